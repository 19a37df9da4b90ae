{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "inferflux.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped name of every object. */}}
{{- define "inferflux.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "inferflux.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inferflux.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "inferflux.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "inferflux.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "inferflux.secretName" -}}
{{- default (include "inferflux.fullname" .) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "inferflux.policyRedisUrl" -}}
{{- default .Values.sharedState.redisUrl .Values.sharedState.policyRedisUrl -}}
{{- end -}}

{{- define "inferflux.rateLimitRedisUrl" -}}
{{- default .Values.sharedState.redisUrl .Values.sharedState.rateLimitRedisUrl -}}
{{- end -}}

{{/*
"true" when the policy store is the file on the volume: no policy Redis URL in the values. (A URL
kept in auth.existingSecret is not visible here; set persistence.enabled=false with it.)
*/}}
{{- define "inferflux.fileStore" -}}
{{- if not (include "inferflux.policyRedisUrl" .) -}}true{{- end -}}
{{- end -}}

{{/* Refuse values the server would refuse at start, or that lose data between replicas. */}}
{{- define "inferflux.validate" -}}
{{- $oidc := dig "auth" "oidc" "issuer" "" .Values.config -}}
{{- if and (not .Values.auth.apiKeys) (not .Values.auth.existingSecret) (not $oidc) (not (dig "auth" "api_keys" list .Values.config)) -}}
{{- fail "inferflux: set auth.apiKeys, auth.existingSecret, config.auth.api_keys or config.auth.oidc.issuer: off loopback the server refuses to run without credentials" -}}
{{- end -}}
{{- $replicas := ternary .Values.autoscaling.maxReplicas .Values.replicaCount .Values.autoscaling.enabled | int -}}
{{- if and (gt $replicas 1) (include "inferflux.fileStore" .) .Values.persistence.enabled (not (has "ReadWriteMany" .Values.persistence.accessModes)) -}}
{{- fail "inferflux: several replicas cannot share a policy store on a ReadWriteOnce volume; set sharedState.redisUrl (or policyRedisUrl), or persistence.accessModes: [ReadWriteMany]" -}}
{{- end -}}
{{- end -}}
