{{/* The release's full name: the release name if it contains the chart's, else both. */}}
{{- define "venue-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "venue-operator.serviceAccountName" -}}
{{- default (include "venue-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Selector labels: stable for the life of a release (a Deployment's selector is immutable). */}}
{{- define "venue-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "venue-operator.labels" -}}
{{ include "venue-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The operator's namespace: namespace.name, or the release's. */}}
{{- define "venue-operator.namespace" -}}
{{- if .Values.namespace.create -}}
{{- required "namespace.create needs namespace.name (a namespace other than the release's)" .Values.namespace.name -}}
{{- else -}}
{{- default .Release.Namespace .Values.namespace.name -}}
{{- end -}}
{{- end -}}
