"""This machine's GPUs, as both the launcher and the requester name them.

Nothing here knows who asks: it imports neither the launcher nor the requester.
"""
