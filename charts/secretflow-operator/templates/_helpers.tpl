{{- define "sfo.labels" -}}
app.kubernetes.io/part-of: secretflow-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
{{- define "sfo.partyNamespaces" -}}
{{- if .Values.party.namespaces }}{{ join "," .Values.party.namespaces }}{{ else }}{{ .Release.Namespace }}{{ end -}}
{{- end }}
