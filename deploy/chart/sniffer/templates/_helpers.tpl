{{- define "sniffer.name" -}}{{ .Release.Name }}{{- end }}

{{- define "sniffer.labels" -}}
app.kubernetes.io/name: sniffer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "sniffer.selector" -}}
app.kubernetes.io/name: sniffer
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sniffer.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- /* The capabilities the agent checks for at start-up (sniffer/src/caps.rs). */ -}}
{{- define "sniffer.capabilities" -}}
- BPF
- PERFMON
- SYS_PTRACE
- DAC_READ_SEARCH
{{- if eq .Values.imageSource "layers" }}
- SYS_ADMIN
{{- end }}
{{- end }}
