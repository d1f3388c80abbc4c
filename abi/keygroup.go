package abi

// DefaultMaxParallelism is the default number of key groups.
const DefaultMaxParallelism = 128

// KeyHash is the stable 64-bit hash of a key: FNV-1a followed by the
// MurmurHash3 64-bit finaliser (FNV-1a alone spreads short keys poorly).
// It is part of the ABI: savepoints depend on it, so it never changes.
func KeyHash(key []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// KeyGroup returns the key group of key among maxParallelism groups.
func KeyGroup(key []byte, maxParallelism int) int {
	return int(KeyHash(key) % uint64(maxParallelism))
}

// OperatorIndexForKeyGroup returns the subtask that owns key group kg
// (Flink's formula: kg * parallelism / maxParallelism).
func OperatorIndexForKeyGroup(kg, parallelism, maxParallelism int) int {
	return kg * parallelism / maxParallelism
}

// KeyGroupRange is the half-open range [Start, End) of key groups a subtask owns.
type KeyGroupRange struct{ Start, End int }

// Contains reports whether kg is in the range.
func (r KeyGroupRange) Contains(kg int) bool { return kg >= r.Start && kg < r.End }

// KeyGroupRangeForSubtask returns the key groups owned by subtask i of
// parallelism p (the inverse of OperatorIndexForKeyGroup).
func KeyGroupRangeForSubtask(i, p, maxParallelism int) KeyGroupRange {
	start := (i*maxParallelism + p - 1) / p
	end := ((i+1)*maxParallelism + p - 1) / p
	return KeyGroupRange{Start: start, End: end}
}
