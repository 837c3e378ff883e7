package storage_test

import (
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
)

type runtimeObject = runtime.Object

func clientv3WithRev(rev int64) clientv3.OpOption { return clientv3.WithRev(rev) }
