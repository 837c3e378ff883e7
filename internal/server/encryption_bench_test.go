package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// BenchmarkEncryptionAPI measures, through the API of an in-process
// server without and with --secrets-encryption: Pod creates (never
// encrypted: they must not slow down), Secret creates, and LISTs of 500
// Secrets from etcd (resourceVersion "": every item decrypted) and from
// the watch cache (resourceVersion "0": none).
func BenchmarkEncryptionAPI(b *testing.B) {
	for _, mode := range []string{"off", "secretbox", "aescbc"} {
		b.Run(mode, func(b *testing.B) {
			c := framework.StartInProcess(b, func(cfg *server.Config) {
				cfg.Controllers = nil
				cfg.DisableScheduler = true
				if mode != "off" {
					cfg.SecretsEncryption, cfg.SecretsEncryptionProvider = true, mode
				}
			})
			ctx := context.Background()
			var n atomic.Int64
			b.Run("pod-create-parallel", func(b *testing.B) {
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", n.Add(1))},
							Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
						if _, err := c.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
			secret := func() *corev1.Secret {
				return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", n.Add(1))},
					Data: map[string][]byte{"v": make([]byte, 1024)}}
			}
			b.Run("secret-create", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, err := c.Client.CoreV1().Secrets("default").Create(ctx, secret(), metav1.CreateOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.StopTimer()
			list, err := c.Client.CoreV1().Secrets("bench").List(ctx, metav1.ListOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			for i := len(list.Items); i < 500; i++ {
				if _, err := c.Client.CoreV1().Secrets("bench").Create(ctx, secret(), metav1.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			for _, rv := range []string{"", "0"} {
				name := "secret-list500-etcd"
				if rv == "0" {
					name = "secret-list500-cache"
				}
				b.Run(name, func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						l, err := c.Client.CoreV1().Secrets("bench").List(ctx, metav1.ListOptions{ResourceVersion: rv})
						if err != nil || len(l.Items) != 500 {
							b.Fatalf("list: %v (%d items)", err, len(l.Items))
						}
					}
				})
			}
		})
	}
}
