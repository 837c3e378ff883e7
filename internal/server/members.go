package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/etcd"
)

// removeDeletedMembers removes the etcd member of a server whose Node is
// deleted (`kubectl delete node`), as k3s does: a server gone for good
// then no longer counts towards the quorum, and a replacement may join
// under the same name. Every server of the cluster watches; the first to
// act wins, the others find no member left. It blocks until ctx ends.
func removeDeletedMembers(ctx context.Context, cs kubernetes.Interface, db *etcd.Etcd, lg *slog.Logger) error {
	factory := informers.NewSharedInformerFactory(cs, 0)
	nodes := factory.Core().V1().Nodes().Informer()
	_, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			node, ok := obj.(*corev1.Node)
			if !ok {
				return
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			switch err := db.RemoveMember(rctx, node.Name); {
			case err == nil:
				lg.Info("removed the etcd member of a deleted node", "node", node.Name)
			case errors.Is(err, etcd.ErrNoSuchMember):
			default:
				lg.Error("removing the etcd member of a deleted node", "node", node.Name, "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	factory.StartWithContext(ctx)
	<-ctx.Done()
	factory.Shutdown()
	return nil
}
