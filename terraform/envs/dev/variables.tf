# The inputs a person types (example.tfvars), described and validated here.
# envs/dev and envs/prod declare the same variables and pass them to
# modules/stack; what differs between them is fixed in their main.tf.

variable "project_id" {
  description = "Google Cloud project to deploy into (its ID, not its name or number)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "The project_id must be a project ID: 6 to 30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the Cloud Run service and job, Cloud Scheduler, Artifact Registry and the build trigger, e.g. us-central1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "The region must be a Google Cloud region such as us-central1 or europe-west4, not a zone (us-central1-a) or a multi-region (US)."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name: <name_prefix>-<environment>-loader and so on; cloudbuild.yaml's _NAME_PREFIX."
  type        = string
  default     = "pgbq"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,13}[a-z0-9]$", var.name_prefix))
    error_message = "The name_prefix must be 2 to 15 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen (service account ids built from it are limited to 30 characters)."
  }
}

variable "image_tag" {
  description = "Tag (the commit SHA cloudbuild.yaml pushed) of the images a newly created loader service and planner job start from. Cloud Build deploys every later image."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "The image_tag must be a container image tag: up to 128 letters, digits, underscores, periods or hyphens."
  }
}

variable "database" {
  description = "The source PostgreSQL database: name, user, and exactly one of cloud_sql_instance (PROJECT:REGION:INSTANCE, through the Cloud SQL connector, whose socket it encrypts itself) or host (a host name or IP address, with port, sslmode and ca_secret_version: the version of the pg-ca secret holding the CA certificate that verifies the server; a private address also needs vpc_egress). sslmode defaults to verify-full; disable, allow, prefer and require, which do not verify the server, need allow_unverified_tls = true (PG_ALLOW_UNVERIFIED_TLS)."
  type = object({
    name                 = string
    user                 = string
    cloud_sql_instance   = optional(string, "")
    host                 = optional(string, "")
    port                 = optional(number, 5432)
    sslmode              = optional(string, "verify-full")
    ca_secret_version    = optional(string, "")
    allow_unverified_tls = optional(bool, false)
  })

  validation {
    condition     = (var.database.cloud_sql_instance == "") != (var.database.host == "")
    error_message = "The database must set exactly one of cloud_sql_instance or host."
  }

  validation {
    condition     = var.database.cloud_sql_instance == "" || can(regex("^[a-z0-9.:-]+:[a-z]+-[a-z]+[0-9]+:[a-z][a-z0-9-]*$", var.database.cloud_sql_instance))
    error_message = "The database.cloud_sql_instance must be an instance connection name, PROJECT:REGION:INSTANCE."
  }

  # The host goes into PG_DSN: a host name (RFC 1123 labels), an IPv4 or
  # an IPv6 address, nothing that could carry a space, a quote or "=" and
  # so add a parameter to the connection string.
  validation {
    condition = var.database.host == "" || (length(var.database.host) <= 253 && (
      can(regex("^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$", var.database.host)) ||
      can(regex("^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$", var.database.host))
    ))
    error_message = "The database.host must be a host name (letters, digits, hyphens, dots) or an IP address."
  }

  validation {
    condition     = var.database.port >= 1 && var.database.port <= 65535 && floor(var.database.port) == var.database.port
    error_message = "The database.port must be a port number from 1 to 65535."
  }

  validation {
    condition     = can(regex("^[A-Za-z0-9_.@-]+$", var.database.name)) && can(regex("^[A-Za-z0-9_.@-]+$", var.database.user))
    error_message = "The database name and user must be plain identifiers (letters, digits, _ . @ -)."
  }

  validation {
    condition     = contains(["verify-full", "verify-ca"], var.database.sslmode) || (var.database.allow_unverified_tls && contains(["disable", "allow", "prefer", "require"], var.database.sslmode))
    error_message = "The database.sslmode must be verify-full (the default) or verify-ca; disable, allow, prefer and require do not verify the server and need allow_unverified_tls = true."
  }

  # verify-ca checks the certificate chain only: against the public roots
  # any server with any public certificate would pass. A host needs the CA.
  validation {
    condition     = var.database.host == "" || !contains(["verify-full", "verify-ca"], var.database.sslmode) || can(regex("^[1-9][0-9]*$", var.database.ca_secret_version))
    error_message = "With a host and sslmode verify-full or verify-ca, database.ca_secret_version must be the version number of the CA certificate in the <name_prefix>-<environment>-pg-ca secret, such as \"1\"."
  }
}

variable "pg_password_secret_version" {
  description = "Version of the PostgreSQL password secret the services use, e.g. \"1\". Pinned: Cloud Run reads the secret when an instance starts."
  type        = string

  validation {
    condition     = can(regex("^[1-9][0-9]*$", var.pg_password_secret_version))
    error_message = "The pg_password_secret_version must be a version number such as \"1\", not \"latest\": pin the version and change it deliberately."
  }
}

variable "source_table" {
  description = "SYNC_TABLE: the source table, optionally schema-qualified (public.activity_logs). Empty when tables lists several."
  type        = string
  default     = ""

  validation {
    condition     = length(var.source_table) <= 200
    error_message = "The source_table must be a table name of at most 200 characters (or empty when tables is set)."
  }
}

variable "tables" {
  description = "SYNC_TABLES: several source tables instead of source_table, each with optional id_column, timestamp_column, time_zone, dest_table, start_date, chunk_size, updated_at (unset ones take the single-table variables). Exactly one of source_table and tables is set."
  type = list(object({
    table            = string
    id_column        = optional(string)
    timestamp_column = optional(string)
    time_zone        = optional(string)
    dest_table       = optional(string)
    start_date       = optional(string)
    chunk_size       = optional(number)
    updated_at       = optional(string)
  }))
  default = []

  validation {
    condition     = alltrue([for t in var.tables : length(t.table) >= 1 && length(t.table) <= 200])
    error_message = "Each of tables needs a table name of 1 to 200 characters."
  }

  validation {
    condition     = alltrue([for t in var.tables : t.dest_table == null ? true : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", t.dest_table)) && length(t.dest_table) <= 1024])
    error_message = "Each dest_table of tables must be a BigQuery table name (letters, digits, underscores)."
  }

  validation {
    condition     = alltrue([for t in var.tables : t.start_date == null ? true : can(regex("^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", t.start_date))])
    error_message = "Each start_date of tables must be a date, YYYY-MM-DD."
  }

  validation {
    condition     = alltrue([for t in var.tables : t.chunk_size == null ? true : t.chunk_size >= 1 && t.chunk_size <= 2000000 && floor(t.chunk_size) == t.chunk_size])
    error_message = "Each chunk_size of tables must be a whole number of rows from 1 to 2000000 (SYNC_CHUNK_SIZE)."
  }

  validation {
    condition     = alltrue([for t in var.tables : t.time_zone == null ? true : can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", t.time_zone))])
    error_message = "Each time_zone of tables must be a tz database name such as Europe/Berlin."
  }

  validation {
    condition     = length(distinct([for t in var.tables : coalesce(t.dest_table, element(split(".", t.table), length(split(".", t.table)) - 1))])) == length(var.tables)
    error_message = "The tables must name distinct BigQuery tables (dest_table, or the source table's name without its schema)."
  }
}

variable "id_column" {
  description = "SYNC_ID_COLUMN: unique key column (smallint, integer, bigint, numeric(p,s), uuid, text or varchar). Empty: the binary's default (id)."
  type        = string
  default     = ""
}

variable "timestamp_column" {
  description = "SYNC_TIMESTAMP_COLUMN: the column whose UTC day is the date. Empty: the binary's default (created_at)."
  type        = string
  default     = ""
}

variable "dest_table" {
  description = "SYNC_DEST_TABLE: BigQuery table name. Empty: the source table's name without schema."
  type        = string
  default     = ""

  validation {
    condition     = var.dest_table == "" || (can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.dest_table)) && length(var.dest_table) <= 1024)
    error_message = "The dest_table must be a BigQuery table name (letters, digits, underscores) or empty."
  }
}

variable "start_date" {
  description = "SYNC_START_DATE: first date to sync (YYYY-MM-DD). Empty: the date of the source's first row."
  type        = string
  default     = ""

  validation {
    condition     = var.start_date == "" || can(regex("^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", var.start_date))
    error_message = "The start_date must be a date, YYYY-MM-DD, or empty."
  }
}

variable "chunk_size" {
  description = "SYNC_CHUNK_SIZE: rows per chunk (one load job each)."
  type        = number
  default     = 250000

  validation {
    condition     = var.chunk_size >= 1 && var.chunk_size <= 2000000 && floor(var.chunk_size) == var.chunk_size
    error_message = "The chunk_size (SYNC_CHUNK_SIZE) must be a whole number of rows from 1 to 2000000."
  }
}

variable "finish_grace" {
  description = "SYNC_FINISH_GRACE: how long after midnight UTC a day is still open to late commits, e.g. 1h. Empty: the binary's default."
  type        = string
  default     = ""

  validation {
    condition     = var.finish_grace == "" || can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.finish_grace))
    error_message = "The finish_grace must be a duration such as 90m or 1h30m, or empty."
  }
}

variable "updated_at_column" {
  description = "SYNC_UPDATED_AT_COLUMN: the column every insert and update sets (with an index on it); the planner then follows updates, deletes and moved rows (docs/changes.md). Empty: append-only."
  type        = string
  default     = ""
}

variable "changes_grace" {
  description = "SYNC_CHANGES_GRACE: how far back each planner run looks again for changes that committed late or were stamped by a lagging clock, e.g. 10m. Empty: the binary's default."
  type        = string
  default     = ""

  validation {
    condition     = var.changes_grace == "" || can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.changes_grace))
    error_message = "The changes_grace must be a duration such as 10m, or empty."
  }
}

variable "sweep_days" {
  description = "SYNC_SWEEP_DAYS: days of history each planner run compares by fingerprint for a table that follows changes (deletes and moved rows are found within ceil(days of history / this) runs); 0 turns the sweep off."
  type        = number
  default     = 31

  validation {
    condition     = var.sweep_days >= 0 && var.sweep_days <= 3660 && floor(var.sweep_days) == var.sweep_days
    error_message = "The sweep_days (SYNC_SWEEP_DAYS) must be a whole number from 0 to 3660."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of both binaries."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "The log_level must be debug, info, warn or error."
  }
}

variable "bigquery_location" {
  description = "BQ_LOCATION: location of the datasets and jobs, a multi-region (US, EU) or a region."
  type        = string
  default     = "US"

  validation {
    condition     = can(regex("^(US|EU|[a-z]+-[a-z]+[0-9]+)$", var.bigquery_location))
    error_message = "The bigquery_location must be US, EU or a region such as europe-west4."
  }
}

variable "bigquery_datasets" {
  description = "Dataset ids; an empty one defaults to <name_prefix>_<environment> (destination), with _staging and _state appended for the others."
  type = object({
    destination = optional(string, "")
    staging     = optional(string, "")
    state       = optional(string, "")
  })
  default = {}

  validation {
    condition     = alltrue([for id in values(var.bigquery_datasets) : id == "" || (can(regex("^[A-Za-z0-9_]+$", id)) && length(id) <= 1024)])
    error_message = "The bigquery_datasets ids must be letters, digits and underscores."
  }
}

variable "bigquery_reader_groups" {
  description = "Google groups (emails) that may read the destination dataset. The datasets list their access in full: without a group here, only project owners and pgbq's own identities reach the synced data (no project viewers)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for g in var.bigquery_reader_groups : can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", g))])
    error_message = "Each of bigquery_reader_groups must be a group's email address."
  }
}

variable "staging_table_expiration_days" {
  description = "Default table expiration of the staging dataset, in days."
  type        = number
  default     = 14

  validation {
    condition     = var.staging_table_expiration_days >= 1 && var.staging_table_expiration_days <= 60 && floor(var.staging_table_expiration_days) == var.staging_table_expiration_days
    error_message = "The staging_table_expiration_days must be a whole number from 1 to 60."
  }
}

variable "loader_max_instances" {
  description = "Most loader instances, and so most dates synced at once: the fan-out knob."
  type        = number
  default     = 10

  validation {
    condition     = var.loader_max_instances >= 1 && var.loader_max_instances <= 100 && floor(var.loader_max_instances) == var.loader_max_instances
    error_message = "The loader_max_instances must be a whole number from 1 to 100."
  }
}

variable "loader_budget_seconds" {
  description = "LOADER_BUDGET in seconds: how long one push request works before a continuation message takes over its date."
  type        = number
  default     = 480

  validation {
    condition     = var.loader_budget_seconds >= 10 && var.loader_budget_seconds <= 530 && floor(var.loader_budget_seconds) == var.loader_budget_seconds
    error_message = "The loader_budget_seconds (LOADER_BUDGET) must be a whole number from 10 to 530, so that a request's work, last load and publish fit in the 600-second push ack deadline."
  }
}

variable "loader_memory" {
  description = "Memory of a loader instance (make bench measures peak RSS per date at 170-200 MB for 8-column rows and 250-280 MB for 5 MB rows: chunks end at 32 MB and encoded chunks in flight at 48 MB whatever the row width; the back-fill pool works 2 dates at once; raise it only for larger SYNC_CHUNK_SIZE)."
  type        = string
  default     = "1Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.loader_memory))
    error_message = "The loader_memory must be a size such as 512Mi or 1Gi."
  }
}

variable "planner_schedule" {
  description = "Cron schedule (5 fields) of the planner runs, read in planner_time_zone. Every run re-syncs and re-publishes today."
  type        = string
  default     = "0 * * * *"

  validation {
    condition     = can(regex("^[0-9A-Za-z*,/-]+( +[0-9A-Za-z*,/-]+){4}$", var.planner_schedule))
    error_message = "The planner_schedule must be a cron expression of 5 fields (minute hour day-of-month month day-of-week), e.g. \"0 * * * *\" for hourly."
  }
}

variable "planner_time_zone" {
  description = "Time zone (tz database name) in which planner_schedule is read."
  type        = string
  default     = "Etc/UTC"

  validation {
    condition     = can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", var.planner_time_zone))
    error_message = "The planner_time_zone must be a tz database name such as Etc/UTC or Europe/Berlin."
  }
}

variable "planner_in_flight" {
  description = "PLANNER_IN_FLIGHT: a date whose newest sync_control entry is younger than this is being worked on and not planned again, e.g. 15m."
  type        = string
  default     = "15m"

  validation {
    condition     = can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.planner_in_flight)) && var.planner_in_flight != ""
    error_message = "The planner_in_flight must be a duration such as 15m or 1h30m."
  }
}

variable "planner_queued" {
  description = "PLANNER_QUEUED: a date planned (its message published) but not yet started is not published again for this long, e.g. 24h; raise it for a back-fill that takes longer (docs/operations.md, \"Back-fills\")."
  type        = string
  default     = "24h"

  validation {
    condition     = can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.planner_queued)) && var.planner_queued != ""
    error_message = "The planner_queued must be a duration such as 24h or 72h (PLANNER_QUEUED)."
  }
}

variable "planner_recheck_days" {
  description = "PLANNER_RECHECK_DAYS: each planner run compares the finished dates of this many days before today again and re-opens those with rows that arrived late (0: never)."
  type        = number
  default     = 3

  validation {
    condition     = var.planner_recheck_days >= 0 && var.planner_recheck_days <= 366 && floor(var.planner_recheck_days) == var.planner_recheck_days
    error_message = "The planner_recheck_days must be a whole number of days from 0 to 366 (PLANNER_RECHECK_DAYS)."
  }
}

variable "planner_quarantine_after" {
  description = "PLANNER_QUARANTINE_AFTER: a date that failed this many times since it was last re-opened is quarantined: no longer planned until `planner resync`, and the quarantine alert fires (0: never)."
  type        = number
  default     = 3

  validation {
    condition     = var.planner_quarantine_after >= 0 && var.planner_quarantine_after <= 1000 && floor(var.planner_quarantine_after) == var.planner_quarantine_after
    error_message = "The planner_quarantine_after must be a whole number from 0 to 1000 (PLANNER_QUARANTINE_AFTER)."
  }
}

variable "planner_max_dates" {
  description = "PLANNER_MAX_DATES: most messages one planner run publishes."
  type        = number
  default     = 500

  validation {
    condition     = var.planner_max_dates >= 1 && var.planner_max_dates <= 100000 && floor(var.planner_max_dates) == var.planner_max_dates
    error_message = "The planner_max_dates must be a whole number from 1 to 100000."
  }
}

variable "max_delivery_attempts" {
  description = "Push deliveries of one message before it goes to the dead-letter topic."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "The max_delivery_attempts must be a whole number from 5 to 100 (Pub/Sub's limits)."
  }
}

variable "vpc_egress" {
  description = "Direct VPC egress of the loader and planner, for a source on a private address: network and subnetwork names. null: none."
  type = object({
    network    = string
    subnetwork = string
  })
  default = null

  validation {
    condition     = var.vpc_egress == null ? true : (var.vpc_egress.network != "" && var.vpc_egress.subnetwork != "")
    error_message = "The vpc_egress must name both a network and a subnetwork, or be null."
  }
}

variable "build_trigger" {
  description = "Cloud Build trigger for this environment on a repository connected to Cloud Build (2nd gen): repository (projects/P/locations/L/connections/C/repositories/R) and exactly one of branch_regex or tag_regex. null: create the trigger yourself."
  type = object({
    repository   = string
    branch_regex = optional(string)
    tag_regex    = optional(string)
  })
  default = null

  validation {
    condition     = var.build_trigger == null ? true : ((var.build_trigger.branch_regex == null) != (var.build_trigger.tag_regex == null) && can(regex("^projects/[^/]+/locations/[^/]+/connections/[^/]+/repositories/[^/]+$", var.build_trigger.repository)))
    error_message = "The build_trigger needs a repository projects/P/locations/L/connections/C/repositories/R and exactly one of branch_regex or tag_regex."
  }
}

variable "legacy_pubsub_token_creator" {
  description = "Set to true in projects created before 2021-04-08: Pub/Sub's service agent then also needs roles/iam.serviceAccountTokenCreator on the push identity."
  type        = bool
  default     = false
}

variable "notification_channels" {
  description = "Notification channel ids (projects/PROJECT/notificationChannels/ID) every alert of this environment notifies; empty: incidents show in the console only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]+$", c))])
    error_message = "Each notification channel must be an id of the form projects/PROJECT/notificationChannels/NUMBER."
  }
}

variable "runbook_url" {
  description = "URL of the runbook page (docs/runbook.md); each alert links to its own heading (#anchor appended)."
  type        = string
  default     = "https://github.com/pgbq/pgbq/blob/main/docs/runbook.md"

  validation {
    condition     = can(regex("^https://[^ #]+$", var.runbook_url))
    error_message = "The runbook_url must be an https URL without a fragment."
  }
}

variable "freshness_lag_hours" {
  description = "Alert when a table's newest finished date ended longer ago than this many hours (e.g. 30: yesterday not finished by 06:00 UTC)."
  type        = number
  default     = 30

  validation {
    condition     = var.freshness_lag_hours >= 1 && var.freshness_lag_hours <= 720
    error_message = "The freshness_lag_hours must be from 1 to 720."
  }
}

variable "backfill_loaders" {
  description = "Instances of the back-fill worker pool (loader --pull on the back-fill subscription); 0 when no back-fill runs (nothing billed). docs/operations.md, \"Back-fills\"."
  type        = number
  default     = 0

  validation {
    condition     = var.backfill_loaders >= 0 && var.backfill_loaders <= 100 && floor(var.backfill_loaders) == var.backfill_loaders
    error_message = "The backfill_loaders must be a whole number of instances from 0 to 100."
  }
}

variable "backfill_max_outstanding" {
  description = "Dates one back-fill instance works at once (Pub/Sub flow control): with 2, one date's loads and publish wait on BigQuery while the other is read (make scale: efficiency 0.48 with 1, 0.61-0.70 with 2, 0.58 with 3); each date worked holds its own chunks (about 200 MB at most)."
  type        = number
  default     = 2

  validation {
    condition     = var.backfill_max_outstanding >= 1 && var.backfill_max_outstanding <= 64 && floor(var.backfill_max_outstanding) == var.backfill_max_outstanding
    error_message = "The backfill_max_outstanding must be a whole number from 1 to 64."
  }
}
