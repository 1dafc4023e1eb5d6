package state

// MemoryExpirySizes reports how many dedupe keys, index entries and
// scheduled expiries m holds.
func MemoryExpirySizes(m *Memory) (dedupe, index, scheduled int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.dedupe), len(m.index), len(m.expiry)
}
