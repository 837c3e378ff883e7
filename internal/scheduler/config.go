package scheduler

import "time"

// Config configures a Scheduler. The zero value is upstream's default.
type Config struct {
	// SchedulerName is the spec.schedulerName of the pods this scheduler
	// takes; "" means "default-scheduler".
	SchedulerName string
	// PercentageOfNodesToScore bounds how many feasible nodes a decision
	// looks for before it stops filtering (at least 100 nodes); 0 means
	// upstream's adaptive default max(5, 50 - nodes/125) percent.
	PercentageOfNodesToScore int32
	// BindWorkers is how many goroutines make the API calls (binding,
	// status, events, preemption); 0 means 64.
	BindWorkers int
	// OnBound, if not nil, is called after each successful binding, from
	// a bind worker (benchmarks count bindings with it; it must not block).
	OnBound func(namespace, name, node string)
	// Metrics records upstream's scheduler metrics (NewMetrics); nil
	// records none.
	Metrics *Metrics
	// VolumeBindTimeout bounds how long a pod whose claims the scheduler
	// had bound or provisioned waits for them before it is retried; 0
	// means upstream's 600 s.
	VolumeBindTimeout time.Duration
}

// DefaultSchedulerName is the scheduler name pods get when they name none.
const DefaultSchedulerName = "default-scheduler"

func (c Config) withDefaults() Config {
	if c.SchedulerName == "" {
		c.SchedulerName = DefaultSchedulerName
	}
	if c.BindWorkers <= 0 {
		c.BindWorkers = 64
	}
	if c.VolumeBindTimeout <= 0 {
		c.VolumeBindTimeout = defaultVolumeBindTimeout
	}
	if c.PercentageOfNodesToScore < 0 {
		c.PercentageOfNodesToScore = 0
	}
	return c
}

// minFeasibleNodes is the floor on how many feasible nodes a decision
// looks for, as upstream's minFeasibleNodesToFind.
const minFeasibleNodes = 100

// numFeasibleNodesToFind returns how many feasible nodes to find among n
// nodes before scoring, as upstream's adaptive percentageOfNodesToScore.
func numFeasibleNodesToFind(n int, percentage int32) int {
	if n <= minFeasibleNodes || percentage >= 100 {
		return n
	}
	pct := int(percentage)
	if pct <= 0 {
		pct = max(50-n/125, 5)
	}
	num := n * pct / 100
	if num < minFeasibleNodes {
		return minFeasibleNodes
	}
	return num
}
