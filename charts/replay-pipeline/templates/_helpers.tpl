{{/*
Names, labels and the shared pieces of every role's pod. Most helpers take a
context dict: (dict "root" $ "key" "<values key of the role>").
*/}}

{{- define "replay-pipeline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "replay-pipeline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "replay-pipeline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels; pass (dict "root" $ "component" "<name>") or the root. */}}
{{- define "replay-pipeline.selectorLabels" -}}
{{- $root := .root | default . -}}
app.kubernetes.io/name: {{ include "replay-pipeline.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* Every label of a resource; same argument as selectorLabels. */}}
{{- define "replay-pipeline.labels" -}}
{{- $root := .root | default . -}}
helm.sh/chart: {{ include "replay-pipeline.chart" $root }}
{{ include "replay-pipeline.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: replay-pipeline
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "replay-pipeline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "replay-pipeline.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "replay-pipeline.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{/*
The roles: values key -> what the chart derives for it. `deps` names the
shared env blocks below; topicEnv/groupEnv only for consumers;
metricsService is the `service` label the process puts on its metrics.
*/}}
{{- define "replay-pipeline.roles" -}}
capture:
  role: capture
  component: capture
  kind: Deployment
  hostEnv: CAPTURE_HOST
  portEnv: CAPTURE_PORT
  metricsService: capture
  deps: [kafka, postgres]
api:
  role: api
  component: api
  kind: Deployment
  hostEnv: API_HOST
  portEnv: API_PORT
  metricsService: replay-api
  deps: [postgres, clickhouse, s3, redis]
blobConsumer:
  role: blob-consumer
  component: blob-consumer
  kind: StatefulSet
  hostEnv: BLOB_CONSUMER_HOST
  portEnv: BLOB_CONSUMER_PORT
  topicEnv: BLOB_TOPIC
  groupEnv: BLOB_GROUP_ID
  metricsService: blob-consumer
  deps: [kafka, s3]
blobConsumerOverflow:
  role: blob-consumer
  component: blob-consumer-overflow
  kind: StatefulSet
  hostEnv: BLOB_CONSUMER_HOST
  portEnv: BLOB_CONSUMER_PORT
  topicEnv: BLOB_TOPIC
  groupEnv: BLOB_GROUP_ID
  metricsService: blob-consumer
  deps: [kafka, s3]
sink:
  role: sink
  component: sink
  kind: Deployment
  hostEnv: SINK_HOST
  portEnv: SINK_PORT
  topicEnv: SINK_TOPIC
  groupEnv: SINK_GROUP_ID
  metricsService: clickhouse-sink
  deps: [kafka, clickhouse]
behaviorsSink:
  role: behaviors-sink
  component: behaviors-sink
  kind: Deployment
  hostEnv: BEHAVIORS_HOST
  portEnv: BEHAVIORS_PORT
  topicEnv: BEHAVIORS_TOPIC
  groupEnv: BEHAVIORS_GROUP_ID
  metricsService: behaviors-sink
  deps: [kafka, clickhouse]
realtimeSink:
  role: realtime-sink
  component: realtime-sink
  kind: Deployment
  hostEnv: REALTIME_HOST
  portEnv: REALTIME_PORT
  topicEnv: REALTIME_TOPIC
  groupEnv: REALTIME_GROUP_ID
  metricsService: realtime-sink
  deps: [kafka, redis]
migrate:
  role: migrate
  component: migrate
  kind: Job
  deps: [postgres, clickhouse, kafka, s3]
{{- end -}}

{{/* The long-running roles, in rendering order. */}}
{{- define "replay-pipeline.workloadKeys" -}}
capture api blobConsumer blobConsumerOverflow sink behaviorsSink realtimeSink
{{- end -}}

{{/* One role's spec from the table above: (dict "root" $ "key" k) -> YAML. */}}
{{- define "replay-pipeline.role" -}}
{{- index (include "replay-pipeline.roles" .root | fromYaml) .key | toYaml -}}
{{- end -}}

{{/* Resource name of a role: fullname-component within 63 characters (52 for
StatefulSets, whose pods' controller-revision-hash label adds 11); a long
fullname is shortened, never the component, so names stay distinct. */}}
{{- define "replay-pipeline.componentName" -}}
{{- $role := include "replay-pipeline.role" . | fromYaml -}}
{{- $max := ternary 52 63 (eq $role.kind "StatefulSet") -}}
{{- $prefix := include "replay-pipeline.fullname" .root | trunc (int (sub $max (add 1 (len $role.component)))) | trimSuffix "-" -}}
{{- printf "%s-%s" $prefix $role.component -}}
{{- end -}}

{{/* "true" when the role's KEDA ScaledObject is rendered: enabled and the
cluster serves keda.sh/v1alpha1. Without the API it is skipped (NOTES warns)
and the workload keeps its fixed replica count. */}}
{{- define "replay-pipeline.kedaActive" -}}
{{- $c := index .root.Values .key -}}
{{- $keda := dig "autoscaling" "keda" "enabled" false $c -}}
{{- if and $keda (.root.Capabilities.APIVersions.Has "keda.sh/v1alpha1") -}}true{{- end -}}
{{- end -}}

{{/* "true" when an autoscaler owns the replica count. */}}
{{- define "replay-pipeline.autoscaled" -}}
{{- $c := index .root.Values .key -}}
{{- if or $c.autoscaling.hpa.enabled (include "replay-pipeline.kedaActive" .) -}}true{{- end -}}
{{- end -}}

{{- define "replay-pipeline.monitoringActive" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" -}}true{{- end -}}
{{- end -}}

{{/* --- Shared env blocks ------------------------------------------------- */}}

{{/* One env entry from an existing Secret's key, else from a plain value.
(dict "name" ENV "secret" s "key" k "value" v "what" "externalX.url") */}}
{{- define "replay-pipeline.envSecretOrValue" -}}
{{- if .secret }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret | quote }}
      key: {{ required (printf "%s: the key name in existingSecret must not be empty" .what) .key | quote }}
{{- else if .value }}
- name: {{ .name }}
  value: {{ .value | toString | quote }}
{{- else if .required }}
{{- fail (printf "%s: neither existingSecret nor %s is set; set existingSecret (recommended) or, for development only, %s" (splitList "." .what | first) (splitList "." .what | last) .what) }}
{{- end }}
{{- end -}}

{{- define "replay-pipeline.env.kafka" -}}
{{- $k := .Values.externalKafka -}}
{{- include "replay-pipeline.envSecretOrValue" (dict "name" "KAFKA_BROKERS" "secret" $k.existingSecret "key" $k.existingSecretBrokersKey "value" $k.brokers "what" "externalKafka.brokers" "required" true) }}
{{- end -}}

{{- define "replay-pipeline.env.postgres" -}}
{{- $p := .Values.externalPostgres -}}
{{- include "replay-pipeline.envSecretOrValue" (dict "name" "DATABASE_URL" "secret" $p.existingSecret "key" $p.existingSecretUrlKey "value" $p.url "what" "externalPostgres.url" "required" true) }}
{{- end -}}

{{- define "replay-pipeline.env.clickhouse" -}}
{{- $c := .Values.externalClickhouse -}}
{{- include "replay-pipeline.envSecretOrValue" (dict "name" "CLICKHOUSE_URL" "secret" $c.existingSecret "key" $c.existingSecretUrlKey "value" $c.url "what" "externalClickhouse.url" "required" true) }}
{{- end -}}

{{- define "replay-pipeline.env.redis" -}}
{{- $r := .Values.externalRedis -}}
{{- include "replay-pipeline.envSecretOrValue" (dict "name" "REDIS_URL" "secret" $r.existingSecret "key" $r.existingSecretUrlKey "value" $r.url "what" "externalRedis.url" "required" true) }}
{{- end -}}

{{/* The ONE place the blob store is wired: blob consumers (writers), the API
(reader) and migrate all include this, so they cannot disagree on endpoint,
bucket, prefix or credentials. */}}
{{- define "replay-pipeline.env.s3" -}}
{{- $s := .Values.externalS3 }}
- name: BLOB_STORE
  value: "s3"
- name: S3_BUCKET
  value: {{ required "externalS3.bucket must not be empty" $s.bucket | quote }}
- name: S3_ENDPOINT
  value: {{ $s.endpoint | quote }}
- name: S3_REGION
  value: {{ $s.region | quote }}
- name: S3_FORCE_PATH_STYLE
  value: {{ $s.forcePathStyle | toString | quote }}
- name: BLOB_PREFIX
  value: {{ required "externalS3.prefix must not be empty" $s.prefix | quote }}
{{- with $s.sse }}
- name: S3_SSE
  value: {{ . | quote }}
{{- end }}
{{- with $s.kmsKeyId }}
- name: S3_KMS_KEY_ID
  value: {{ . | quote }}
{{- end }}
{{- if and (not $s.existingSecret) (ne (empty $s.accessKeyId) (empty $s.secretAccessKey)) }}
{{- fail "externalS3: set both accessKeyId and secretAccessKey, or neither (or use existingSecret)" }}
{{- end }}
{{- include "replay-pipeline.envSecretOrValue" (dict "name" "S3_ACCESS_KEY_ID" "secret" $s.existingSecret "key" $s.existingSecretAccessKeyIdKey "value" $s.accessKeyId "what" "externalS3.accessKeyId") }}
{{- include "replay-pipeline.envSecretOrValue" (dict "name" "S3_SECRET_ACCESS_KEY" "secret" $s.existingSecret "key" $s.existingSecretSecretAccessKeyKey "value" $s.secretAccessKey "what" "externalS3.secretAccessKey") }}
{{- end -}}

{{/* Bytes of a Kubernetes quantity such as 20Gi, 500M or 1073741824. */}}
{{- define "replay-pipeline.quantityBytes" -}}
{{- $q := toString . -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$" $q) -}}
{{- fail (printf "cannot read %q as a storage size (use e.g. 20Gi)" $q) -}}
{{- end -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q | float64 -}}
{{- $unit := trimPrefix (regexFind "^[0-9]+(\\.[0-9]+)?" $q) $q -}}
{{- $mult := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 -}}
{{- mulf $num (index $mult $unit) | floor | int64 -}}
{{- end -}}

{{/* BLOB_MIN_FREE_DISK_BYTES: the value, or a tenth of the spool volume. */}}
{{- define "replay-pipeline.minFreeDiskBytes" -}}
{{- $c := index .root.Values .key -}}
{{- if gt (int64 $c.minFreeDiskBytes) 0 -}}
{{- int64 $c.minFreeDiskBytes -}}
{{- else -}}
{{- div (include "replay-pipeline.quantityBytes" $c.persistence.size | int64) 10 -}}
{{- end -}}
{{- end -}}

{{/* Settings of a role's ConfigMap: LOG_LEVEL, then global config, then the
role's config (the role wins). Values are strings. */}}
{{- define "replay-pipeline.configData" -}}
{{- $c := index .root.Values .key -}}
{{- $data := dict "LOG_LEVEL" .root.Values.logLevel -}}
{{- range $k, $v := .root.Values.config }}{{ $_ := set $data $k $v }}{{ end -}}
{{- range $k, $v := $c.config }}{{ $_ := set $data $k $v }}{{ end -}}
{{- range $k := keys $data | sortAlpha }}
{{ $k }}: {{ include "replay-pipeline.scalar" (index $data $k) | quote }}
{{- end }}
{{- end -}}

{{/* A setting value as text: whole numbers without an exponent (values files
hand numbers over as floats), booleans as true/false. */}}
{{- define "replay-pipeline.scalar" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) -}}
{{- int64 . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/* The whole env of a role's container: listen address and port, the
dependencies it needs, its topic and group, then global and role extraEnv.
Settings in the role's ConfigMap come through envFrom. */}}
{{- define "replay-pipeline.env" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .key -}}
{{- $role := include "replay-pipeline.role" . | fromYaml -}}
{{- with $role.hostEnv }}
- name: {{ . }}
  value: "0.0.0.0"
- name: {{ $role.portEnv }}
  value: {{ $c.port | toString | quote }}
{{- end }}
{{- range $role.deps }}
{{- include (printf "replay-pipeline.env.%s" .) $root }}
{{- end }}
{{- with $role.topicEnv }}
- name: {{ . }}
  value: {{ $c.topic | quote }}
- name: {{ $role.groupEnv }}
  value: {{ $c.groupId | quote }}
{{- end }}
{{- if eq $role.kind "StatefulSet" }}
{{- if $c.staticMembership }}
- name: KAFKA_GROUP_INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
- name: BLOB_SPOOL_DIR
  value: /var/lib/replay/spool
- name: BLOB_MIN_FREE_DISK_BYTES
  value: {{ include "replay-pipeline.minFreeDiskBytes" . | quote }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with $c.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod template of a long-running role (Deployment and StatefulSet). */}}
{{- define "replay-pipeline.podTemplate" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .key -}}
{{- $role := include "replay-pipeline.role" . | fromYaml -}}
metadata:
  labels:
    {{- include "replay-pipeline.labels" (dict "root" $root "component" $role.component) | nindent 4 }}
    {{- with $c.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "replay-pipeline.configData" . | sha256sum }}
    {{- with $c.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "replay-pipeline.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
  {{- with $root.Values.image.pullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  securityContext:
    {{- toYaml $c.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
  containers:
    - name: {{ $role.role }}
      image: {{ include "replay-pipeline.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: [{{ $role.role | quote }}]
      ports:
        - name: http
          containerPort: {{ $c.port }}
          protocol: TCP
      envFrom:
        - configMapRef:
            name: {{ include "replay-pipeline.componentName" . }}
      env:
        {{- include "replay-pipeline.env" . | trim | nindent 8 }}
      livenessProbe:
        {{- toYaml $c.livenessProbe | nindent 8 }}
      readinessProbe:
        {{- toYaml $c.readinessProbe | nindent 8 }}
      resources:
        {{- toYaml $c.resources | nindent 8 }}
      securityContext:
        {{- toYaml $c.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if eq $role.kind "StatefulSet" }}
        - name: spool
          mountPath: /var/lib/replay/spool
        {{- end }}
  volumes:
    - name: tmp
      emptyDir: {}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
