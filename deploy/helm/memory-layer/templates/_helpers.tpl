{{- /*
Helpers shared by the templates.

This chart uses only Go's built-in template functions (printf, print, eq, ne, and, or, not, index,
range, define/template) plus Helm's `fail`, always with a literal message: no Sprig (toYaml,
nindent, quote, default, include) and no other Helm-only functions. That keeps it a normal Helm
chart while letting the tests render it with Go's own text/template engine (compiled to
WebAssembly) and validate the output against the Kubernetes schemas, without a Helm binary (the
tests' renderer supplies `fail` as Helm does: the render stops with the message). Consequences for
template authors:
  - quote strings with printf "%q" (a Go-quoted string is a valid YAML double-quoted scalar);
  - `template` output cannot be captured or indented by a pipeline, so each block helper below
    is written at the indentation where it is used (pod level: 6 spaces; container level: 10),
    label helpers are flow-map entries that callers put in braces after their component
    (`labels: {"app.kubernetes.io/component": "api", {{ template "memory-layer.labels" . }}}`),
    and object names are built from .Release.Name (`<release>-api`, `<release>-worker`, …);
  - a CronJob's pod spec sits 4 columns deeper (spec.jobTemplate.spec.template.spec) than a
    Deployment's or a Job's (spec.template.spec). Helpers take one argument (the root context:
    no dict to pass an indentation with), so the pod-level and container-level block helpers
    shift their lines by 4 spaces themselves when the template being rendered is the backup
    CronJob's (Helm's .Template.Name; the prefix `$i` on each of their lines).
*/ -}}

{{- define "memory-layer.serviceAccountName" -}}
{{- if .Values.serviceAccount.name }}{{ .Values.serviceAccount.name }}{{ else }}{{ .Release.Name }}{{ end -}}
{{- end -}}

{{- define "memory-layer.labels" -}}
"app.kubernetes.io/name": "memory-layer", "app.kubernetes.io/instance": {{ printf "%q" .Release.Name }}, "app.kubernetes.io/version": {{ printf "%q" .Chart.AppVersion }}, "app.kubernetes.io/managed-by": {{ printf "%q" .Release.Service }}, "helm.sh/chart": {{ printf "%q" (printf "%s-%s" .Chart.Name .Chart.Version) }}
{{- end -}}

{{- define "memory-layer.selectorLabels" -}}
"app.kubernetes.io/name": "memory-layer", "app.kubernetes.io/instance": {{ printf "%q" .Release.Name }}
{{- end -}}

{{- define "memory-layer.image" -}}
{{ printf "%q" (printf "%s:%s" .Values.image.repository .Values.image.tag) }}
{{- end -}}

{{- /* Pod annotations that make the Vault Agent Injector write each secret to /vault/secrets. */ -}}
{{- define "memory-layer.vaultAnnotations" }}
{{- $i := "" }}{{ if eq .Template.Name (printf "%s/cronjob-backup.yaml" .Template.BasePath) }}{{ $i = "    " }}{{ end }}
{{- if eq .Values.secrets.provider "vault-agent" }}
{{ $i }}        vault.hashicorp.com/agent-inject: "true"
{{ $i }}        vault.hashicorp.com/agent-pre-populate-only: "true"
{{ $i }}        vault.hashicorp.com/role: {{ printf "%q" .Values.secrets.vault.role }}
        {{- range .Values.secrets.env }}
{{ $i }}        vault.hashicorp.com/agent-inject-secret-{{ . }}: {{ printf "%q" $.Values.secrets.vault.path }}
{{ $i }}        vault.hashicorp.com/agent-inject-template-{{ . }}: {{ printf "%q" (printf "{{- with secret %q -}}{{ index .Data.data %q }}{{- end -}}" $.Values.secrets.vault.path .) }}
        {{- end }}
        {{- range .Values.secrets.files }}
{{ $i }}        vault.hashicorp.com/agent-inject-secret-{{ .file }}: {{ printf "%q" $.Values.secrets.vault.path }}
{{ $i }}        vault.hashicorp.com/agent-inject-template-{{ .file }}: {{ printf "%q" (printf "{{- with secret %q -}}{{ index .Data.data %q }}{{- end -}}" $.Values.secrets.vault.path .key) }}
        {{- end }}
{{- end }}
{{- end -}}

{{- define "memory-layer.podSecurityContext" }}
{{- $i := "" }}{{ if eq .Template.Name (printf "%s/cronjob-backup.yaml" .Template.BasePath) }}{{ $i = "    " }}{{ end }}
{{ $i }}      securityContext:
{{ $i }}        runAsNonRoot: true
{{ $i }}        runAsUser: {{ .Values.podSecurityContext.runAsUser }}
{{ $i }}        runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
{{ $i }}        fsGroup: {{ .Values.podSecurityContext.fsGroup }}
{{ $i }}        fsGroupChangePolicy: OnRootMismatch
{{ $i }}        seccompProfile:
{{ $i }}          type: RuntimeDefault
{{- end -}}

{{- define "memory-layer.containerSecurityContext" }}
{{- $i := "" }}{{ if eq .Template.Name (printf "%s/cronjob-backup.yaml" .Template.BasePath) }}{{ $i = "    " }}{{ end }}
{{ $i }}          securityContext:
{{ $i }}            allowPrivilegeEscalation: false
{{ $i }}            privileged: false
{{ $i }}            readOnlyRootFilesystem: true
{{ $i }}            runAsNonRoot: true
{{ $i }}            capabilities:
{{ $i }}              drop: ["ALL"]
{{ $i }}            seccompProfile:
{{ $i }}              type: RuntimeDefault
{{- end -}}

{{- /*
The container command: a POSIX shell wrapper that exports each Vault-sourced variable from its
file (failing the start if one is missing, so a missing DATABASE_URL never silently falls back to
the embedded database), then replaces itself with the Node process. The arguments (`serve`,
`worker`, `migrate`) follow in `args`.
*/ -}}
{{- define "memory-layer.command" }}
{{- $i := "" }}{{ if eq .Template.Name (printf "%s/cronjob-backup.yaml" .Template.BasePath) }}{{ $i = "    " }}{{ end }}
{{ $i }}          command:
{{ $i }}            - /bin/sh
{{ $i }}            - -c
{{ $i }}            - |
{{ $i }}              set -eu
              {{- range .Values.secrets.env }}
{{ $i }}              {{ . }}="$(cat /vault/secrets/{{ . }})"; export {{ . }}
              {{- end }}
{{ $i }}              exec node bin/memory-layer.js "$@"
{{ $i }}            - memory-layer
{{- end -}}

{{- /* Non-secret settings as ConfigMap data (2 spaces). Keep in step with configEnv below. */ -}}
{{- define "memory-layer.configData" }}
  HOST: "0.0.0.0"
  PORT: {{ printf "%q" (print .Values.api.port) }}
  DATA_DIR: "/data"
  {{- range $key, $value := .Values.config }}
  {{- if not (or (eq $key "HOST") (eq $key "PORT") (eq $key "DATA_DIR")) }}
  {{ $key }}: {{ printf "%q" (print $value) }}
  {{- end }}
  {{- end }}
  {{- range .Values.secrets.files }}
  {{ .env }}: {{ printf "%q" (printf "/vault/secrets/%s" .file) }}
  {{- end }}
  {{- if .Values.tracing.endpoint }}
  OTEL_EXPORTER_OTLP_ENDPOINT: {{ printf "%q" .Values.tracing.endpoint }}
  {{- end }}
  {{- $pg := .Values.stores.postgres }}
  {{- if $pg.sslMode }}
  DATABASE_SSLMODE: {{ printf "%q" $pg.sslMode }}
  {{- end }}
  {{- if or $pg.ca.secretName $pg.ca.configMapName }}
  DATABASE_CA_FILE: {{ printf "%q" (printf "/etc/memory-layer/postgres-ca/%s" $pg.ca.key) }}
  {{- end }}
  {{- if $pg.clientCertSecret }}
  DATABASE_CLIENT_CERT_FILE: "/etc/memory-layer/postgres-client/tls.crt"
  DATABASE_CLIENT_KEY_FILE: "/etc/memory-layer/postgres-client/tls.key"
  {{- end }}
  {{- $s3 := .Values.stores.s3 }}
  {{- if or $s3.ca.secretName $s3.ca.configMapName }}
  S3_CA_FILE: {{ printf "%q" (printf "/etc/memory-layer/s3-ca/%s" $s3.ca.key) }}
  {{- end }}
  {{- if $s3.sse }}
  S3_SSE: {{ printf "%q" $s3.sse }}
  {{- end }}
  {{- if $s3.kmsKeyId }}
  S3_SSE_KMS_KEY_ID: {{ printf "%q" $s3.kmsKeyId }}
  {{- end }}
  {{- if .Values.encryption.keyDir.source }}
  KEY_DIR: "/etc/memory-layer/keys"
  {{- end }}
  {{- if .Values.encryption.kekSecret.name }}
  KEK_FILE: {{ printf "%q" (printf "/etc/memory-layer/kek/%s" .Values.encryption.kekSecret.key) }}
  {{- end }}
{{- end -}}

{{- /* The same settings as a container's env list (12 spaces), for the migration Job. */ -}}
{{- define "memory-layer.configEnv" }}
            - name: HOST
              value: "0.0.0.0"
            - name: PORT
              value: {{ printf "%q" (print .Values.api.port) }}
            - name: DATA_DIR
              value: "/data"
            {{- range $key, $value := .Values.config }}
            {{- if not (or (eq $key "HOST") (eq $key "PORT") (eq $key "DATA_DIR")) }}
            - name: {{ $key }}
              value: {{ printf "%q" (print $value) }}
            {{- end }}
            {{- end }}
            {{- range .Values.secrets.files }}
            - name: {{ .env }}
              value: {{ printf "%q" (printf "/vault/secrets/%s" .file) }}
            {{- end }}
            {{- if .Values.tracing.endpoint }}
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: {{ printf "%q" .Values.tracing.endpoint }}
            {{- end }}
            {{- $pg := .Values.stores.postgres }}
            {{- if $pg.sslMode }}
            - name: DATABASE_SSLMODE
              value: {{ printf "%q" $pg.sslMode }}
            {{- end }}
            {{- if or $pg.ca.secretName $pg.ca.configMapName }}
            - name: DATABASE_CA_FILE
              value: {{ printf "%q" (printf "/etc/memory-layer/postgres-ca/%s" $pg.ca.key) }}
            {{- end }}
            {{- if $pg.clientCertSecret }}
            - name: DATABASE_CLIENT_CERT_FILE
              value: "/etc/memory-layer/postgres-client/tls.crt"
            - name: DATABASE_CLIENT_KEY_FILE
              value: "/etc/memory-layer/postgres-client/tls.key"
            {{- end }}
            {{- $s3 := .Values.stores.s3 }}
            {{- if or $s3.ca.secretName $s3.ca.configMapName }}
            - name: S3_CA_FILE
              value: {{ printf "%q" (printf "/etc/memory-layer/s3-ca/%s" $s3.ca.key) }}
            {{- end }}
            {{- if $s3.sse }}
            - name: S3_SSE
              value: {{ printf "%q" $s3.sse }}
            {{- end }}
            {{- if $s3.kmsKeyId }}
            - name: S3_SSE_KMS_KEY_ID
              value: {{ printf "%q" $s3.kmsKeyId }}
            {{- end }}
            {{- if .Values.encryption.keyDir.source }}
            - name: KEY_DIR
              value: "/etc/memory-layer/keys"
            {{- end }}
            {{- if .Values.encryption.kekSecret.name }}
            - name: KEK_FILE
              value: {{ printf "%q" (printf "/etc/memory-layer/kek/%s" .Values.encryption.kekSecret.key) }}
            {{- end }}
{{- end -}}

{{- /* Scratch volumes (8 spaces); workloads add the CSI secrets volume themselves. */ -}}
{{- define "memory-layer.volumes" }}
{{- $i := "" }}{{ if eq .Template.Name (printf "%s/cronjob-backup.yaml" .Template.BasePath) }}{{ $i = "    " }}{{ end }}
{{ $i }}        - name: tmp
{{ $i }}          emptyDir:
{{ $i }}            sizeLimit: {{ .Values.volumes.tmpSizeLimit }}
{{ $i }}        - name: data
{{ $i }}          emptyDir:
{{ $i }}            sizeLimit: {{ .Values.volumes.dataSizeLimit }}
{{- $pg := .Values.stores.postgres }}{{ $s3 := .Values.stores.s3 }}{{ $keys := .Values.encryption.keyDir }}
{{- if $pg.ca.secretName }}
{{ $i }}        - name: postgres-ca
{{ $i }}          secret:
{{ $i }}            secretName: {{ printf "%q" $pg.ca.secretName }}
{{ $i }}            defaultMode: 292  # 0444: a CA certificate is public
{{- else if $pg.ca.configMapName }}
{{ $i }}        - name: postgres-ca
{{ $i }}          configMap:
{{ $i }}            name: {{ printf "%q" $pg.ca.configMapName }}
{{- end }}
{{- if $pg.clientCertSecret }}
{{ $i }}        - name: postgres-client-cert
{{ $i }}          secret:
{{ $i }}            secretName: {{ printf "%q" $pg.clientCertSecret }}
{{ $i }}            defaultMode: 288  # 0440: readable by the pod's group (fsGroup) only
{{- end }}
{{- if $s3.ca.secretName }}
{{ $i }}        - name: s3-ca
{{ $i }}          secret:
{{ $i }}            secretName: {{ printf "%q" $s3.ca.secretName }}
{{ $i }}            defaultMode: 292  # 0444: a CA certificate is public
{{- else if $s3.ca.configMapName }}
{{ $i }}        - name: s3-ca
{{ $i }}          configMap:
{{ $i }}            name: {{ printf "%q" $s3.ca.configMapName }}
{{- end }}
{{- if eq $keys.source "persistentVolumeClaim" }}
{{ $i }}        - name: keys
{{ $i }}          persistentVolumeClaim:
{{ $i }}            claimName: {{ printf "%q" $keys.claimName }}
{{- else if eq $keys.source "secret" }}
{{ $i }}        - name: keys
{{ $i }}          secret:
{{ $i }}            secretName: {{ printf "%q" $keys.secretName }}
{{ $i }}            defaultMode: 288  # 0440: readable by the pod's group (fsGroup) only
{{- else if eq $keys.source "csi" }}
{{ $i }}        - name: keys
{{ $i }}          csi:
{{ $i }}            driver: secrets-store.csi.k8s.io
{{ $i }}            readOnly: true
{{ $i }}            volumeAttributes:
{{ $i }}              secretProviderClass: {{ printf "%q" $keys.secretProviderClass }}
{{- end }}
{{- if .Values.encryption.kekSecret.name }}
{{ $i }}        - name: kek
{{ $i }}          secret:
{{ $i }}            secretName: {{ printf "%q" .Values.encryption.kekSecret.name }}
{{ $i }}            defaultMode: 288  # 0440: readable by the pod's group (fsGroup) only
{{- end }}
{{- end -}}

{{- define "memory-layer.volumeMounts" }}
{{- $i := "" }}{{ if eq .Template.Name (printf "%s/cronjob-backup.yaml" .Template.BasePath) }}{{ $i = "    " }}{{ end }}
{{ $i }}            - name: tmp
{{ $i }}              mountPath: /tmp
{{ $i }}            - name: data
{{ $i }}              mountPath: /data
            {{- if eq .Values.secrets.provider "csi" }}
{{ $i }}            - name: vault-secrets
{{ $i }}              mountPath: /vault/secrets
{{ $i }}              readOnly: true
            {{- end }}
{{- $pg := .Values.stores.postgres }}{{ $s3 := .Values.stores.s3 }}
{{- if or $pg.ca.secretName $pg.ca.configMapName }}
{{ $i }}            - name: postgres-ca
{{ $i }}              mountPath: /etc/memory-layer/postgres-ca
{{ $i }}              readOnly: true
{{- end }}
{{- if $pg.clientCertSecret }}
{{ $i }}            - name: postgres-client-cert
{{ $i }}              mountPath: /etc/memory-layer/postgres-client
{{ $i }}              readOnly: true
{{- end }}
{{- if or $s3.ca.secretName $s3.ca.configMapName }}
{{ $i }}            - name: s3-ca
{{ $i }}              mountPath: /etc/memory-layer/s3-ca
{{ $i }}              readOnly: true
{{- end }}
{{- if .Values.encryption.keyDir.source }}
{{ $i }}            - name: keys
{{ $i }}              mountPath: /etc/memory-layer/keys
{{ $i }}              readOnly: {{ ne .Values.encryption.keyDir.source "persistentVolumeClaim" }}
{{- end }}
{{- if .Values.encryption.kekSecret.name }}
{{ $i }}            - name: kek
{{ $i }}              mountPath: /etc/memory-layer/kek
{{ $i }}              readOnly: true
{{- end }}
{{- end -}}


{{- /*
NetworkPolicy peers (8 spaces), from an object with `cidrs`, `namespaceLabels` and `podLabels`:
one ipBlock per CIDR, and one selector peer when either label set is given. Namespace labels
alone select every pod in those namespaces; pod labels alone, those pods in the release's
namespace; both, those pods in those namespaces.
*/ -}}
{{- define "memory-layer.peers" }}
        {{- range .cidrs }}
        - ipBlock:
            cidr: {{ printf "%q" . }}
        {{- end }}
        {{- if or .namespaceLabels .podLabels }}
        - podSelector:
            {{- if .podLabels }}
            matchLabels:
              {{- range $key, $value := .podLabels }}
              {{ printf "%q" $key }}: {{ printf "%q" $value }}
              {{- end }}
            {{- else }}
            matchLabels: {}
            {{- end }}
          {{- if .namespaceLabels }}
          namespaceSelector:
            matchLabels:
              {{- range $key, $value := .namespaceLabels }}
              {{ printf "%q" $key }}: {{ printf "%q" $value }}
              {{- end }}
          {{- end }}
        {{- end }}
{{- end -}}

{{- define "memory-layer.tcpPorts" }}
        {{- range .ports }}
        - protocol: TCP
          port: {{ . }}
        {{- end }}
{{- end -}}
