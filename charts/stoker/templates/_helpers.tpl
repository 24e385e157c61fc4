{{/*
The chart's name (nameOverride wins).
*/}}
{{- define "stoker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: fullnameOverride, else RELEASE-CHART (just RELEASE when the
release name already contains the chart's name, so `helm install stoker` gives "stoker").
*/}}
{{- define "stoker.fullname" -}}
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

{{- define "stoker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "stoker.labels" -}}
helm.sh/chart: {{ include "stoker.chart" . }}
{{ include "stoker.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stoker
{{- end }}

{{/*
The operator pods' selector. The name and control-plane labels are stoker-operator v0.5's, so
that what selected its operator pods (`kubectl logs -l app.kubernetes.io/name=stoker-operator`,
`-l control-plane=controller-manager`) selects Stoker's: the name is nameOverride if set, as
in v0.5, else stoker-operator (v0.5's chart name).
*/}}
{{- define "stoker.selectorLabels" -}}
app.kubernetes.io/name: {{ default "stoker-operator" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
control-plane: controller-manager
{{- end }}

{{/*
controller.logDevMode, true as a boolean or as the string "true" (stoker-operator v0.5's
chart quoted it): non-empty when on.
*/}}
{{- define "stoker.logDevMode" -}}
{{- if eq (toString .Values.controller.logDevMode) "true" }}on{{ end }}
{{- end }}

{{/*
The operator's service account.
*/}}
{{- define "stoker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-controller-manager" (include "stoker.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The ClusterRole that gateway pods' service accounts are bound to (by a RoleBinding in the
gateway's namespace): always `stoker-agent`, whatever the release is called, because the
operator's automatic RoleBindings (rbac.autoBindAgent) and users' own ones name it so, as with
stoker-operator v0.5.
*/}}
{{- define "stoker.agentClusterRoleName" -}}
stoker-agent
{{- end }}

{{/*
The agent ClusterRole's name in the chart's earlier versions, FULLNAME-agent. When it differs
from `stoker-agent` (a release not called `stoker`), the chart keeps a ClusterRole of that name
too, with the same rules, so that RoleBindings written against it keep working.
*/}}
{{- define "stoker.legacyAgentClusterRoleName" -}}
{{- printf "%s-agent" (include "stoker.fullname" .) }}
{{- end }}

{{/*
Images: the tag defaults to the chart's appVersion.
*/}}
{{- define "stoker.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "stoker.agentImage" -}}
{{- printf "%s:%s" .Values.agentImage.repository (default .Chart.AppVersion .Values.agentImage.tag) }}
{{- end }}

{{/*
Admission: the Service the API server calls, the two webhook configurations, the Secret the
operator keeps its self-signed CA and serving certificate in (not a chart object: the operator
creates it), and the cert-manager Certificate and its Secret (certManager.enabled).
*/}}
{{- define "stoker.webhookServiceName" -}}
{{- printf "%s-webhook-service" (include "stoker.fullname" .) }}
{{- end }}

{{- define "stoker.mutatingWebhookName" -}}
{{- printf "%s-pod-injection" (include "stoker.fullname" .) }}
{{- end }}

{{- define "stoker.validatingWebhookName" -}}
{{- printf "%s-gatewaysync-validation" (include "stoker.fullname" .) }}
{{- end }}

{{- define "stoker.webhookTLSSecretName" -}}
{{- printf "%s-webhook-tls" (include "stoker.fullname" .) }}
{{- end }}

{{- define "stoker.webhookCertificateName" -}}
{{- printf "%s-webhook-cert" (include "stoker.fullname" .) }}
{{- end }}

{{/*
Where the cert-manager Secret is mounted in the operator container (--webhook-cert-dir).
*/}}
{{- define "stoker.webhookCertDir" -}}
/etc/stoker/webhook-tls
{{- end }}

{{/*
The DNS names of the webhook Service, which its serving certificate must cover.
*/}}
{{- define "stoker.webhookDNSNames" -}}
{{- $service := include "stoker.webhookServiceName" . -}}
- {{ $service }}
- {{ $service }}.{{ .Release.Namespace }}
- {{ $service }}.{{ .Release.Namespace }}.svc
- {{ $service }}.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}
