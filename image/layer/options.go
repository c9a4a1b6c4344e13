package layer

import "time"

// Option configures how a layer tar is written.
type Option func(*options)

type options struct {
	epoch    time.Time
	hasEpoch bool
	sums     *FileSums
}

// WithSourceDateEpoch clamps every timestamp written to a tar to at most t:
// an entry's mtime becomes min(mtime, t). This makes layers reproducible when
// files are created at build time. The default is no clamping.
func WithSourceDateEpoch(t time.Time) Option {
	return func(o *options) {
		o.epoch = t
		o.hasEpoch = true
	}
}

func makeOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// clamp applies the source date epoch to t.
func (o *options) clamp(t time.Time) time.Time {
	if o.hasEpoch && t.After(o.epoch) {
		return o.epoch
	}
	return t
}
