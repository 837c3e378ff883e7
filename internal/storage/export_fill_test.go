package storage

// SetFill sets the watch cache's list page size and decoders until the
// returned function restores them.
func SetFill(pageSize int64, decoders int) (restore func()) {
	oldSize, oldDecoders := fillPageSize, fillDecoders
	fillPageSize, fillDecoders = pageSize, decoders
	return func() { fillPageSize, fillDecoders = oldSize, oldDecoders }
}
