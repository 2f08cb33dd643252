{{/* The rule groups of the PrometheusRule; a template of their own so tests can render them alone. */}}
{{- define "kubetrain.alertGroups" -}}
{{- $r := .Values.prometheusRule -}}
{{- /* The operator's own series, as the chart's ServiceMonitor labels them: a training pod
that exports a kubetrain_jobs_* series of its own cannot raise or hide an alert. */ -}}
{{- $op := printf "job=\"%s-metrics\", namespace=\"%s\"" (include "kubetrain.fullname" .) .Release.Namespace -}}
- name: kubetrain.rules
  rules:
    - alert: KubetrainJobFailed
      # The first failure of a reason creates its series at 1, which increase() cannot see:
      # series that are new within the window count whole, and come first (`or` keeps the left).
      expr: |-
        sum by (reason) (
          (kubetrain_jobs_failed_total{ {{- $op -}} } unless kubetrain_jobs_failed_total{ {{- $op -}} } offset 10m)
          or increase(kubetrain_jobs_failed_total{ {{- $op -}} }[10m])
        ) > 0
      labels:
        severity: {{ $r.severity }}
      annotations:
        summary: "TrainingJobs failed: {{`{{ $value }}`}} in the last 10 minutes, reason {{`{{ $labels.reason }}`}}"
        description: >-
          The kubetrain operator marked {{`{{ $value }}`}} TrainingJob(s) Failed with reason
          {{`{{ $labels.reason }}`}}. `kubectl get tj -A` lists them; `kubectl describe tj NAME`
          shows the Failed condition's message and the events.
    - alert: KubetrainJobStuckBeforeRunning
      # Phases are summed first: a job that goes Pending -> Starting is still not Running.
      expr: |-
        sum(kubetrain_jobs{ {{- $op -}}, phase=~"Pending|Starting"}) > 0
      for: {{ $r.stuckBeforeRunningFor }}
      labels:
        severity: {{ $r.severity }}
      annotations:
        summary: "A TrainingJob has not reached Running for {{ $r.stuckBeforeRunningFor }}"
        description: >-
          For {{ $r.stuckBeforeRunningFor }} at least one TrainingJob has always been Pending or
          Starting (its pods are not all running). Usual causes: no node has the CPU, memory or
          GPUs asked for, a quota, or a slow image pull. `kubectl get tj -A` and
          `kubectl describe tj NAME` name the pod and its reason. (A steady stream of new jobs
          can also keep this count above zero.)
    - alert: KubetrainRestartStorm
      expr: |-
        sum(increase(kubetrain_jobs_restarted_total{ {{- $op -}} }[{{ $r.restartStorm.window }}]))
          + sum(increase(kubetrain_workers_replaced_total{ {{- $op -}} }[{{ $r.restartStorm.window }}]))
          > {{ $r.restartStorm.restarts }}
      labels:
        severity: {{ $r.severity }}
      annotations:
        summary: "TrainingJobs restarted {{`{{ $value | humanize }}`}} times in {{ $r.restartStorm.window }}"
        description: >-
          Whole-job restarts plus worker replacements exceeded {{ $r.restartStorm.restarts }}
          in {{ $r.restartStorm.window }}. Look for crashing workers (OOMKilled, a bad node,
          preemption): `kubectl get tj -A` shows RESTARTS; `kubectl get events -A
          --field-selector involvedObject.kind=TrainingJob` says why.
{{- if and .Values.metrics.serviceMonitor.enabled .Values.metrics.service.enabled }}
    - alert: KubetrainOperatorDown
      # The ServiceMonitor's targets carry job=<the metrics Service's name>.
      expr: |-
        absent(up{job="{{ include "kubetrain.fullname" . }}-metrics", namespace="{{ .Release.Namespace }}"} == 1)
      for: 5m
      labels:
        severity: critical
        namespace: {{ .Release.Namespace }}
      annotations:
        summary: "No kubetrain operator replica is up"
        description: >-
          Prometheus has scraped no kubetrain operator in {{ .Release.Namespace }} for 5
          minutes: TrainingJobs are not reconciled and the other kubetrain alerts cannot fire.
          `kubectl -n {{ .Release.Namespace }} get pods -l app.kubernetes.io/instance={{ .Release.Name }}`.
{{- end }}
{{- end -}}
