// Package batch is the registry of the batch/v1 API group: jobs and
// cronjobs. For each it gives the discovery names, defaulting and validation
// as upstream's batch/v1 defaults and validation do (including the job
// selector and pod labels generated from the job's uid on create), the status
// subresource, `kubectl get` columns and field selectors. Pod templates are
// defaulted and validated by the core registry; this package adds the rules
// for run-to-completion pods around them.
//
// Cron schedules are parsed with github.com/robfig/cron/v3, the parser
// upstream uses, so that what the API accepts and the messages it gives for
// bad schedules match upstream's.
package batch
