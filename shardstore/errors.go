package shardstore

import "errors"

var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("shardstore: closed")

	// ErrTooManyChannels is returned by Register when the UAID already has
	// Options.MaxChannels channels and the channel is new.
	ErrTooManyChannels = errors.New("shardstore: too many channels")

	// ErrDataTooLarge is returned by Put when Put.Data is longer than
	// MaxDataSize. Nothing is written.
	ErrDataTooLarge = errors.New("shardstore: data too large")

	// ErrMetaTooLarge is returned by SetMeta when the blob is longer than
	// MaxMetaSize. Nothing is written.
	ErrMetaTooLarge = errors.New("shardstore: meta too large")

	// ErrCorrupt is wrapped by errors that report a stored record which does
	// not decode (a bug, or on-disk corruption that Pebble's checksums missed).
	ErrCorrupt = errors.New("shardstore: corrupt record")

	// ErrFailed is wrapped by every error of a store that hit an
	// unrecoverable Pebble error (a failed WAL write or fsync, detected
	// corruption). The write in progress is not durable, and the store
	// refuses all later calls: the node must stop and restart from what is
	// on disk.
	ErrFailed = errors.New("shardstore: store failed")

	errNoDir = errors.New("shardstore: Options.Dir is required")
)
