{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "returns-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full resource name: fullnameOverride, or release name plus chart name (just the
release name when it already contains the chart name). Truncated to 63
characters because some Kubernetes name fields are limited to that (DNS-1123).
*/}}
{{- define "returns-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "returns-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "returns-gateway.labels" -}}
helm.sh/chart: {{ include "returns-gateway.chart" . }}
{{ include "returns-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the gateway pods (must never change between upgrades).
*/}}
{{- define "returns-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "returns-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{/*
Labels that select one connector's pods; call with (dict "root" $ "connector" $connector).
*/}}
{{- define "returns-gateway.connectorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "returns-gateway.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: connector-{{ .connector.name }}
{{- end }}

{{/*
Name of the ConfigMap holding the routing table.
*/}}
{{- define "returns-gateway.routesName" -}}
{{- printf "%s-routes" (include "returns-gateway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "returns-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "returns-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding RGW_AMQP_URL and RGW_REDIS_URL: the existing one
named in values, or the one this chart creates.
*/}}
{{- define "returns-gateway.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "returns-gateway.fullname" . }}
{{- end }}
{{- end }}

{{/*
Full image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "returns-gateway.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{- define "returns-gateway.policiesName" -}}
{{- printf "%s-policies" (include "returns-gateway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
