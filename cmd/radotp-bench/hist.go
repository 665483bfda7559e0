package main

import (
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in nanoseconds: exact below 128 ns,
// then 64 buckets per power of two (at most 1.6 % error). Not safe for
// concurrent use; merge per-goroutine histograms.
type hist struct {
	counts []uint64
	n      uint64
	max    uint64
}

const histSub = 7 // 2^(histSub-1) buckets per power of two

func bucketOf(v uint64) int {
	s := max(0, bits.Len64(v)-histSub)
	return s<<(histSub-1) + int(v>>s)
}

// lowOf is the smallest value in bucket i.
func lowOf(i int) uint64 {
	if i < 1<<histSub {
		return uint64(i)
	}
	s := i>>(histSub-1) - 1
	m := uint64(i&(1<<(histSub-1)-1) + 1<<(histSub-1))
	return m << s
}

func (h *hist) add(d time.Duration) {
	v := uint64(max(d, 0))
	i := bucketOf(v)
	if i >= len(h.counts) {
		c := make([]uint64, i+1+64)
		copy(c, h.counts)
		h.counts = c
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, v)
}

func (h *hist) merge(o *hist) {
	if len(o.counts) > len(h.counts) {
		c := make([]uint64, len(o.counts))
		copy(c, h.counts)
		h.counts = c
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q <= 1): the middle of the bucket
// holding it, or the maximum for q = 1.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := max(uint64(q*float64(h.n)+0.5), 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := lowOf(i), lowOf(i+1)
			return time.Duration(min((lo+hi)/2, h.max))
		}
	}
	return time.Duration(h.max)
}
