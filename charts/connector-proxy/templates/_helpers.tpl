{{/*
Names, labels, the image reference, the watched namespaces and the security contexts shared by
every template.
*/}}

{{/* The chart name (nameOverride wins). */}}
{{- define "connector-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name prefix of every resource: the release name, with the chart name unless it already holds it. */}}
{{- define "connector-proxy.fullname" -}}
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

{{/* "<fullname>-<suffix>", kept within 63 characters. Call with (list $ "suffix"). */}}
{{- define "connector-proxy.suffixed" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- $base := include "connector-proxy.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $base $suffix }}
{{- end }}

{{/* The proxy's Deployment and Service name: the fullname itself, so the URL reads http://<fullname>.<ns>... */}}
{{- define "connector-proxy.proxyName" -}}
{{- include "connector-proxy.fullname" . }}
{{- end }}

{{- define "connector-proxy.operatorName" -}}
{{- include "connector-proxy.suffixed" (list . "operator") }}
{{- end }}

{{/* The Secret the chart creates for generated or given keys. */}}
{{- define "connector-proxy.secretName" -}}
{{- include "connector-proxy.suffixed" (list . "keys") }}
{{- end }}

{{- define "connector-proxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "connector-proxy.labels" -}}
helm.sh/chart: {{ include "connector-proxy.chart" . }}
app.kubernetes.io/name: {{ include "connector-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: spiff-connector-proxy
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component. Call with (list $ "proxy"). */}}
{{- define "connector-proxy.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "connector-proxy.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* All labels of one component's resources. Call with (list $ "proxy"). */}}
{{- define "connector-proxy.componentLabels" -}}
{{ include "connector-proxy.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* The image reference: repository@digest when a digest is set, else repository:tag (tag defaults to appVersion). */}}
{{- define "connector-proxy.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/*
The namespaces whose Connectors are watched, as a JSON list; [] means every namespace
(watch.allNamespaces). Default: the release namespace. Parse with fromJsonArray.
*/}}
{{- define "connector-proxy.watchedNamespaces" -}}
{{- if .Values.watch.allNamespaces }}
{{- if .Values.watch.namespaces }}
{{- fail "watch.allNamespaces=true and watch.namespaces are exclusive: empty watch.namespaces, or set watch.allNamespaces=false" }}
{{- end }}
{{- list | toJson }}
{{- else }}
{{- .Values.watch.namespaces | default (list .Release.Namespace) | uniq | toJson }}
{{- end }}
{{- end }}

{{/* Whether Connectors in namespace (index . 1) are watched. Call with (list $ "ns"); renders "true" or "". */}}
{{- define "connector-proxy.isWatched" -}}
{{- $root := index . 0 }}
{{- if or $root.Values.watch.allNamespaces (has (index . 1) (include "connector-proxy.watchedNamespaces" $root | fromJsonArray)) }}true{{ end }}
{{- end }}

{{- define "connector-proxy.proxyServiceAccountName" -}}
{{- if .Values.proxy.serviceAccount.create }}
{{- default (include "connector-proxy.proxyName" .) .Values.proxy.serviceAccount.name }}
{{- else }}
{{- required "proxy.serviceAccount.name is required when proxy.serviceAccount.create=false" .Values.proxy.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "connector-proxy.operatorServiceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "connector-proxy.operatorName" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create=false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The proxy's API key Secret (name and key), or "" when the proxy runs without an API key. */}}
{{- define "connector-proxy.apiKeySecret" -}}
{{- if .Values.proxy.apiKey.existingSecret }}
{{- dict "name" .Values.proxy.apiKey.existingSecret "key" .Values.proxy.apiKey.existingSecretKey | toJson }}
{{- else if or .Values.proxy.apiKey.value .Values.proxy.apiKey.generate }}
{{- dict "name" (include "connector-proxy.secretName" .) "key" "api-key" | toJson }}
{{- end }}
{{- end }}

{{/* The OAuth state signing key Secret (name and key), or "". */}}
{{- define "connector-proxy.oauthStateSecret" -}}
{{- $state := .Values.proxy.oauth.stateSecret }}
{{- if $state.existingSecret }}
{{- dict "name" $state.existingSecret "key" $state.existingSecretKey | toJson }}
{{- else if $state.generate }}
{{- dict "name" (include "connector-proxy.secretName" .) "key" "oauth-state-secret" | toJson }}
{{- end }}
{{- end }}

{{/* The restricted Pod Security Standard, pod level. */}}
{{- define "connector-proxy.podSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.podSecurity.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.podSecurity.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- with .Values.podSecurity.fsGroup }}
fsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The restricted Pod Security Standard, container level (read-only root file system too). */}}
{{- define "connector-proxy.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The proxy's public base URL: proxy.publicUrl, else derived from the Ingress, else "". */}}
{{- define "connector-proxy.publicUrl" -}}
{{- if .Values.proxy.publicUrl }}
{{- .Values.proxy.publicUrl | trimSuffix "/" }}
{{- else if .Values.proxy.ingress.enabled }}
{{- printf "%s://%s" (ternary "https" "http" (not (empty .Values.proxy.ingress.tlsSecretName))) .Values.proxy.ingress.host }}
{{- end }}
{{- end }}

{{/*
The projected ServiceAccount token the proxy and the operator present to connector workloads
(workloadAuth): bound to workloadAuth.audience, renewed by the kubelet.
*/}}
{{- define "connector-proxy.workloadTokenVolume" -}}
- name: workload-token
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken:
          audience: {{ .Values.workloadAuth.audience | quote }}
          expirationSeconds: {{ .Values.workloadAuth.expirationSeconds }}
          path: token
{{- end }}

{{- define "connector-proxy.workloadTokenDir" -}}
/var/run/secrets/spiff-connector-proxy/workload-token
{{- end }}
