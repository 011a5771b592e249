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

{{- define "fma.populatorDeployment" -}}
{{ .Release.Name }}-launcher-populator
{{- end }}

{{/* Cluster-scoped names carry the namespace: one release per namespace may coexist. */}}
{{- define "fma.clusterName" -}}
{{ .Release.Name }}-{{ .Release.Namespace }}-fma-controllers
{{- end }}

{{/*
The project's one image. Upstream's global.imageRegistry replaces the repository's registry
part (<registry>/fma) and global.imageTag the tag, where they are set.
*/}}
{{- define "fma.image" -}}
{{- $repository := .Values.image.repository -}}
{{- with .Values.global.imageRegistry -}}
{{- $repository = printf "%s/fma" (trimSuffix "/" .) -}}
{{- end -}}
{{ $repository }}:{{ .Values.global.imageTag | default .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Upstream's global.local: the image is already on the nodes; never pull it. */}}
{{- define "fma.pullPolicy" -}}
{{- if .root.Values.global.local -}}
Never
{{- else -}}
{{ .policy | default .root.Values.image.pullPolicy }}
{{- end -}}
{{- end }}

{{- define "fma.labels" -}}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* What benchmarking tools select the controllers' Pods by: one component each. */}}
{{- define "fma.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The arguments of `fma operator run`, the same for every replica of both Deployments: each is
a candidate for the one Lease, and whichever holds it plans for both roles.
*/}}
{{- define "fma.operatorArgs" -}}
{{- $c := .Values.controller -}}
- operator
- run
- --namespace={{ .Release.Namespace }}
- --health-port={{ $c.healthPort }}
- --metrics-port={{ $c.metricsPort }}
{{- if $c.leaderElection.enabled }}
- --leader-elect
- --lease-name={{ $c.leaderElection.leaseName }}
{{- else }}
- --no-leader-elect
{{- end }}
- --workers={{ $c.workers }}
- --log-level={{ $c.logLevel }}
{{- with .Values.modelService.eppClusterRole }}
- --epp-cluster-role={{ . }}
{{- end }}
{{- if .Values.placement.enabled }}
- --sleeper-labels
- --placement-port={{ .Values.placement.port }}
- --placement-tls-dir={{ include "fma.placementTlsDir" . }}
- --placement-weight={{ .Values.placement.weight }}
{{- end }}
{{- range $c.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* The placement webhook's Service, and the label that selects the Pods serving it. */}}
{{- define "fma.placementService" -}}
{{ .Release.Name }}-placement-webhook
{{- end }}

{{- define "fma.placementTlsDir" -}}
/var/run/secrets/fma/placement
{{- end }}

{{- define "fma.placementPodLabel" -}}
fma.llm-d.ai/placement-webhook: "true"
{{- end }}
