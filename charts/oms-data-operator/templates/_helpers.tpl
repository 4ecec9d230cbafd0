{{- define "oms-data-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "oms-data-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "oms-data-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "oms-data-operator.serviceAccountName" -}}
{{- default (include "oms-data-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/*
The rules the operator needs in every namespace it watches. Its finalizer is added and removed by a
JSON patch of the resource itself (the "patch" verb); omsredises/finalizers (or omsdynamotables/…) would only be needed to
set blockOwnerDeletion on the Secret's owner reference, which the operator does not do.
*/}}
{{- define "oms-data-operator.watchRules" -}}
- apiGroups: ["data.oms-spider.io"]
  resources: ["omsredises", "omsdynamotables"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["data.oms-spider.io"]
  resources: ["omsredises/status", "omsdynamotables/status"]
  verbs: ["get", "patch"]
# Day-2 resources. Backups are also created by the operator: a snapshot taken by deletion policy
# Snapshot is listed as an OmsBackup.
- apiGroups: ["data.oms-spider.io"]
  resources: ["omsbackups"]
  verbs: ["get", "list", "watch", "patch", "create"]
- apiGroups: ["data.oms-spider.io"]
  resources: ["omsfailovertests"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["data.oms-spider.io"]
  resources: ["omsbackups/status", "omsfailovertests/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
