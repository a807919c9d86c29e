{{- define "slicebroker.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "slicebroker.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "slicebroker.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "slicebroker.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "slicebroker.tlsSecret" -}}
{{- if eq .Values.tls.mode "secret" -}}{{ required "tls.secretName is required with tls.mode=secret" .Values.tls.secretName }}{{- else -}}{{ include "slicebroker.fullname" . }}-mesh-tls{{- end -}}
{{- end -}}

{{- define "slicebroker.redisUrl" -}}
{{- if .Values.redis.bundled -}}
redis://{{ include "slicebroker.fullname" . }}-redis:6379/0
{{- else -}}
{{ required "redis.url is required when redis.bundled is false" .Values.redis.url }}
{{- end -}}
{{- end -}}

{{- define "slicebroker.addr" -}}
{{ include "slicebroker.fullname" .root }}-{{ .name }}:{{ (index .root.Values.services .name).port }}
{{- end -}}

{{/* TLS environment for a process whose settings prefix is .prefix (e.g. SLICEBROKER_BROKER_). */}}
{{- define "slicebroker.tlsEnv" -}}
{{- if eq .root.Values.tls.mode "disabled" }}
- {name: {{ .prefix }}ALLOW_PLAINTEXT, value: "true"}
{{- else }}
- {name: {{ .prefix }}TLS_CA_FILE, value: /etc/slicebroker/tls/ca.crt}
- {name: {{ .prefix }}TLS_CERT_FILE, value: /etc/slicebroker/tls/tls.crt}
- {name: {{ .prefix }}TLS_KEY_FILE, value: /etc/slicebroker/tls/tls.key}
{{- end }}
{{- end -}}

{{/* settings map → SLICEBROKER_<SVC>_<FIELD> variables, one to one. */}}
{{- define "slicebroker.settingsEnv" -}}
{{- range $key, $value := .settings }}
- name: {{ printf "%s%s" $.prefix ($key | upper) }}
  value: {{ if kindIs "slice" $value }}{{ toJson $value | quote }}{{ else }}{{ $value | toString | quote }}{{ end }}
{{- end }}
{{- end -}}
