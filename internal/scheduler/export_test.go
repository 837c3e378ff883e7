package scheduler

import storagev1 "k8s.io/api/storage/v1"

// AddStorageClass makes s see class as its StorageClass informer would
// report it, for tests against a server that does not serve
// storage.k8s.io/v1 (then the informer never runs).
func (s *Scheduler) AddStorageClass(class *storagev1.StorageClass) error {
	if err := s.classes.GetIndexer().Add(class); err != nil {
		return err
	}
	s.queue.MoveAllToActive()
	return nil
}
