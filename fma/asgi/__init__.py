"""ASGI building blocks shared by FMA's small HTTP servers (launcher, stub engine, requester).

Nothing here knows which server it serves: it imports neither the launcher nor the requester.
"""
