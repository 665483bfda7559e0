package radius

import (
	"sync"
	"time"
)

// logLimiter lets through at most one log line per key per interval and
// counts the lines it held back. Keys come from fixed sets (drop reasons and a
// few more), so its map stays small.
type logLimiter struct {
	every time.Duration

	mu sync.Mutex
	m  map[string]*limitState
}

type limitState struct {
	next       time.Time // the next line is allowed from then
	suppressed int       // lines held back since the last one let through
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, m: make(map[string]*limitState)}
}

// allow reports whether a line for key may be logged at now, and if so how
// many lines were suppressed before it.
func (l *logLimiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.m[key]
	if st == nil {
		st = &limitState{}
		l.m[key] = st
	}
	if now.Before(st.next) {
		st.suppressed++
		return false, 0
	}
	suppressed = st.suppressed
	st.suppressed = 0
	st.next = now.Add(l.every)
	return true, suppressed
}
