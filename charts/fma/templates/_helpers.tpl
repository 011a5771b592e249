{{/*
Names. The operator's ServiceAccount is "<release>-fma-controllers": the admission policies
exempt exactly the ServiceAccounts named "<anything>-fma-controllers".
*/}}
{{- define "fma.controllers" -}}
{{ .Release.Name }}-fma-controllers
{{- end }}

{{- define "fma.controllerDeployment" -}}
{{ .Release.Name }}-dual-pods-controller
{{- end }}

{{/* Cluster-scoped names carry the namespace: one release per namespace may coexist. */}}
{{- define "fma.clusterName" -}}
{{ .Release.Name }}-{{ .Release.Namespace }}-fma-controllers
{{- end }}

{{- define "fma.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "fma.labels" -}}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* What benchmarking tools select the controller's Pods by. */}}
{{- define "fma.controllerSelector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: dual-pods-controller
{{- end }}
