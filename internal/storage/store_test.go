package storage_test

import (
	"testing"

	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/storagetest"
)

func TestStore(t *testing.T) {
	client := storagetest.StartEtcd(t)
	storagetest.RunTests(t, func(t *testing.T, cfg storage.Config) storage.Interface {
		return storagetest.WithCompaction(storage.NewStore(client, cfg), client)
	})
}
