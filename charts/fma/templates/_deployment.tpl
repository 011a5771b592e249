{{/*
One operator Deployment. Arguments (a dict): root (the chart's context), component (the
app.kubernetes.io/component label), name, container, replicas, resources, pullPolicy ("" for
image.pullPolicy) and more (arguments after the shared ones).
*/}}
{{- define "fma.operatorDeployment" -}}
{{- $root := .root -}}
{{- $c := $root.Values.controller -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "fma.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  replicas: {{ .replicas }}
  # A new replica starts (and stands by) before the old one stops and hands the Lease over.
  strategy:
    type: RollingUpdate
  selector:
    matchLabels:
      {{- include "fma.selector" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "fma.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        {{- if $root.Values.placement.enabled }}
        {{- include "fma.placementPodLabel" $root | nindent 8 }}
        {{- end }}
        {{- with $c.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $c.metricsPort | quote }}
        prometheus.io/path: /metrics
        {{- with $c.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "fma.controllers" $root }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $c.podSecurityContext | nindent 8 }}
      # The operator stops acting, then hands the Lease back, well within this.
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .container }}
          image: {{ include "fma.image" $root }}
          imagePullPolicy: {{ include "fma.pullPolicy" (dict "root" $root "policy" .pullPolicy) }}
          args:
            {{- include "fma.operatorArgs" $root | nindent 12 }}
            {{- range .more }}
            - {{ . | quote }}
            {{- end }}
          ports:
            - name: health
              containerPort: {{ $c.healthPort }}
            - name: metrics
              containerPort: {{ $c.metricsPort }}
            {{- if $root.Values.placement.enabled }}
            - name: placement
              containerPort: {{ $root.Values.placement.port }}
            {{- end }}
          # Live while the process answers. Ready while it answers too, standby or acting
          # (/readyz tells which: 503 while standing by): a rolling update's new replica
          # stands by until the old one hands the Lease over, so readiness that needed the
          # Lease would never let the old one go. leader_election_master_status says who acts.
          livenessProbe:
            httpGet:
              path: /healthz
              port: health
            initialDelaySeconds: 10
            periodSeconds: 10
          readinessProbe:
            httpGet:
              path: /healthz
              port: health
            periodSeconds: 2
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            {{- toYaml $c.securityContext | nindent 12 }}
          {{- if $root.Values.placement.enabled }}
          volumeMounts:
            - name: placement-tls
              mountPath: {{ include "fma.placementTlsDir" $root }}
              readOnly: true
          {{- end }}
      {{- if $root.Values.placement.enabled }}
      volumes:
        - name: placement-tls
          secret:
            secretName: {{ $root.Values.placement.tls.secretName | default (printf "%s-tls" (include "fma.placementService" $root)) }}
      {{- end }}
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
