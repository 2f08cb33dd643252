{{/* Names, labels and the operator's arguments, shared by the templates. */}}

{{- define "kubetrain.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's objects are named <release>-kubetrain, or <release> when it already says kubetrain. */}}
{{- define "kubetrain.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "kubetrain.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kubetrain.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubetrain.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* On every object of the release: `kubectl get all,cm,sa,role -l app.kubernetes.io/instance=<release>` finds them. */}}
{{- define "kubetrain.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kubetrain.selectorLabels" . }}
app.kubernetes.io/part-of: kubetrain
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "kubetrain.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubetrain.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kubetrain.image" -}}
{{- $img := .Values.operator.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* True (non-empty) when the operator watches only the namespaces in watchNamespaces. */}}
{{- define "kubetrain.namespaced" -}}
{{- if .Values.watchNamespaces }}true{{ end -}}
{{- end -}}

{{/*
The operator's RBAC rules, from files/operator-rules.yaml (generated from operator_rules() in
operator/kubetrain_operator/render/install.py; tests/chart checks that they match).
With "namespaced", the rules for a Role: without the cluster-scoped resources, which a Role
cannot grant and which kopf only uses to follow new namespaces and CRDs (it falls back to the
namespaces it is given and to the CRDs present at its start).
*/}}
{{- define "kubetrain.rules" -}}
{{- $rules := .context.Files.Get "files/operator-rules.yaml" | fromYamlArray -}}
{{- if .namespaced -}}
{{- $kept := list -}}
{{- range $rules -}}
{{- $resources := without .resources "namespaces" "customresourcedefinitions" "clusterkopfpeerings" -}}
{{- if $resources -}}
{{- $kept = append $kept (dict "apiGroups" .apiGroups "resources" $resources "verbs" .verbs) -}}
{{- end -}}
{{- end -}}
{{- $rules = $kept -}}
{{- end -}}
{{- toYaml $rules -}}
{{- end -}}

{{/* The operator's command-line flags (operator/kubetrain_operator/__main__.py). */}}
{{- define "kubetrain.args" -}}
{{- $op := .Values.operator -}}
{{- range .Values.watchNamespaces }}
- {{ printf "--namespace=%s" . | quote }}
{{- end }}
{{- if .Values.peering.enabled }}
- {{ printf "--peering=%s" .Values.peering.name | quote }}
{{- else }}
- --standalone
{{- end }}
- {{ printf "--metrics-port=%v" .Values.metrics.port | quote }}
- {{ printf "--health-port=%v" $op.healthPort | quote }}
- {{ printf "--image-pull-grace=%v" $op.imagePullGraceSeconds | quote }}
- {{ printf "--resync=%v" $op.resyncSeconds | quote }}
- {{ printf "--threads=%v" $op.reconcileThreads | quote }}
- {{ printf "--head-cpu=%v" $op.headPod.cpu | quote }}
- {{ printf "--head-memory=%v" $op.headPod.memory | quote }}
- {{ printf "--head-ephemeral-storage=%v" $op.headPod.ephemeralStorage | quote }}
- {{ printf "--log-level=%v" $op.logLevel | quote }}
{{- with .Values.mirrors }}
{{- if .datasets }}
- {{ printf "--pod-env=KUBETRAIN_DATASETS_MIRROR=%s" .datasets | quote }}
{{- end }}
{{- if .weights }}
- {{ printf "--pod-env=KUBETRAIN_WEIGHTS_MIRROR=%s" .weights | quote }}
{{- end }}
{{- if .huggingFace }}
- {{ printf "--pod-env=HF_ENDPOINT=%s" .huggingFace | quote }}
{{- end }}
{{- end }}
{{- if .Values.networkPolicy.enabled }}
- {{ printf "--metrics-from=%s" (toJson .Values.networkPolicy.metricsFrom) | quote }}
{{- else }}
- --no-network-policy
{{- end }}
{{- range $name, $value := .Values.trainingPods.env }}
- {{ printf "--pod-env=%s=%v" $name $value | quote }}
{{- end }}
{{- range $op.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
