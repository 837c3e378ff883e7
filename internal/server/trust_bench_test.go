package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// BenchmarkTrustBoundaryAPI measures what the trust boundary costs a
// workload's requests, in one run: a service account bound to edit in its
// namespace, beside 1,000 other ClusterRoles and RoleBindings, creates
// Pods and Secrets and lists 500 Pods, against a server with
// authorization off and Secrets stored plain ("off") and one on its
// defaults with Secrets encrypted ("on": Node,RBAC and secretbox).
func BenchmarkTrustBoundaryAPI(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			c := framework.StartInProcess(b, func(cfg *server.Config) {
				cfg.Controllers = nil
				cfg.DisableScheduler = true
				if mode == "off" {
					cfg.AuthorizationMode = server.ModeAlwaysAllow
				} else {
					cfg.SecretsEncryption, cfg.SecretsEncryptionProvider = true, "secretbox"
				}
			})
			ctx := context.Background()
			cs := workloadClient(b, c, ctx)
			var n atomic.Int64
			b.Run("pod-create-parallel", func(b *testing.B) {
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", n.Add(1))},
							Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
						if _, err := cs.CoreV1().Pods("work").Create(ctx, p, metav1.CreateOptions{}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
			b.Run("secret-create", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", n.Add(1))},
						Data: map[string][]byte{"v": make([]byte, 1024)}}
					if _, err := cs.CoreV1().Secrets("work").Create(ctx, s, metav1.CreateOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.StopTimer()
			if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "list"}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			bindEdit(b, c.Client, "list")
			framework.Eventually(b, 10*time.Second, func() bool {
				_, err := cs.CoreV1().Pods("list").List(ctx, metav1.ListOptions{Limit: 1})
				return err == nil
			})
			for i := 0; i < 500; i++ {
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i)},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
				if _, err := c.Client.CoreV1().Pods("list").Create(ctx, p, metav1.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			for _, rv := range []string{"", "0"} {
				name := "pod-list500-etcd"
				if rv == "0" {
					name = "pod-list500-cache"
				}
				b.Run(name, func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						l, err := cs.CoreV1().Pods("list").List(ctx, metav1.ListOptions{ResourceVersion: rv})
						if err != nil || len(l.Items) != 500 {
							b.Fatalf("list: %v", err)
						}
					}
				})
			}
		})
	}
}

// workloadClient makes namespace "work" and a service account "app" in it
// bound to edit there, 1,000 other ClusterRoles and RoleBindings (in 50
// namespaces, to other accounts), and returns a client acting as app.
func workloadClient(b *testing.B, c *framework.Cluster, ctx context.Context) kubernetes.Interface {
	b.Helper()
	admin := c.Client
	for i := 0; i < 50; i++ {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%d", i)}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 1000; i++ {
		g := fmt.Sprintf("group%d.example.com", i)
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("role-%d", i)}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{g}, Resources: []string{"widgets", "gadgets"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{fmt.Sprintf("cm-%d", i)}, Verbs: []string{"get", "update"}},
		}}
		if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rb-%d", i)},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: fmt.Sprintf("sa-%d", i), Namespace: fmt.Sprintf("ns-%d", i%50)}}}
		if _, err := admin.RbacV1().RoleBindings(fmt.Sprintf("ns-%d", i%50)).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "work"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := admin.CoreV1().ServiceAccounts("work").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	bindEdit(b, admin, "work")
	secs := int64(3600)
	tr, err := admin.CoreV1().ServiceAccounts("work").CreateToken(ctx, "app",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rc := rest.AnonymousClientConfig(c.Config)
	rc.BearerToken = tr.Status.Token
	rc.QPS, rc.Burst = -1, 0
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	framework.Eventually(b, 10*time.Second, func() bool {
		_, err := cs.CoreV1().Pods("work").List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil
	})
	return cs
}

// bindEdit binds edit to work/app in namespace ns.
func bindEdit(b *testing.B, admin kubernetes.Interface, ns string) {
	b.Helper()
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "app-edit"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "app", Namespace: "work"}}}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(context.Background(), rb, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTrustBoundaryPaired measures the same requests as
// BenchmarkTrustBoundaryAPI, but against both servers in one loop: each
// iteration sends one request to "off" and one to "on", in alternating
// order, and times each. Noise from the machine (other processes, GC of
// the whole test process, CPU frequency) then falls on both modes alike,
// and neither runs after the other. It reports each mode's mean latency
// (throughput for the parallel creates) and the overhead of "on" in
// percent.
func BenchmarkTrustBoundaryPaired(b *testing.B) {
	ctx := context.Background()
	var clients [2]kubernetes.Interface // off, on
	var admins [2]*framework.Cluster
	for k, mode := range []string{"off", "on"} {
		admins[k] = framework.StartInProcess(b, func(cfg *server.Config) {
			cfg.Controllers = nil
			cfg.DisableScheduler = true
			if mode == "off" {
				cfg.AuthorizationMode = server.ModeAlwaysAllow
			} else {
				cfg.SecretsEncryption, cfg.SecretsEncryptionProvider = true, "secretbox"
			}
		})
		clients[k] = workloadClient(b, admins[k], ctx)
	}
	var n atomic.Int64
	paired := func(b *testing.B, op func(cs kubernetes.Interface) error) {
		var spent [2]time.Duration
		for i := 0; i < b.N; i++ {
			for j := 0; j < 2; j++ {
				k := (i + j) % 2 // off first on even iterations, on first on odd
				start := time.Now()
				if err := op(clients[k]); err != nil {
					b.Fatal(err)
				}
				spent[k] += time.Since(start)
			}
		}
		b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N), "off-ns/op")
		b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N), "on-ns/op")
		b.ReportMetric(100*(float64(spent[1])/float64(spent[0])-1), "overhead-%")
	}
	// Throughput: blocks of 100 creates by 4 goroutines, the modes
	// alternating block by block (which goes first alternates too).
	b.Run("pod-create-4-goroutines", func(b *testing.B) {
		const workers, block = 4, 100
		var spent [2]time.Duration
		var done [2]int
		for round := 0; done[0] < b.N || done[1] < b.N; round++ {
			for j := 0; j < 2; j++ {
				k := (round + j) % 2
				count := min(block, b.N-done[k])
				var next atomic.Int64
				var wg sync.WaitGroup
				start := time.Now()
				for w := 0; w < workers; w++ {
					wg.Go(func() {
						for next.Add(1) <= int64(count) {
							p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", n.Add(1))},
								Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
							if _, err := clients[k].CoreV1().Pods("work").Create(ctx, p, metav1.CreateOptions{}); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				spent[k] += time.Since(start)
				done[k] += count
			}
		}
		for k, mode := range []string{"off", "on"} {
			b.ReportMetric(float64(b.N)/spent[k].Seconds(), mode+"-creates/s")
		}
		b.ReportMetric(100*(float64(spent[1])/float64(spent[0])-1), "overhead-%")
	})
	b.Run("pod-create", func(b *testing.B) {
		paired(b, func(cs kubernetes.Interface) error {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", n.Add(1))},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
			_, err := cs.CoreV1().Pods("work").Create(ctx, p, metav1.CreateOptions{})
			return err
		})
	})
	b.Run("secret-create", func(b *testing.B) {
		paired(b, func(cs kubernetes.Interface) error {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", n.Add(1))},
				Data: map[string][]byte{"v": make([]byte, 1024)}}
			_, err := cs.CoreV1().Secrets("work").Create(ctx, s, metav1.CreateOptions{})
			return err
		})
	})
	b.StopTimer()
	for k, c := range admins {
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "list"}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		bindEdit(b, c.Client, "list")
		for i := 0; i < 500; i++ {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i)},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
			if _, err := c.Client.CoreV1().Pods("list").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		framework.Eventually(b, 10*time.Second, func() bool {
			_, err := clients[k].CoreV1().Pods("list").List(ctx, metav1.ListOptions{Limit: 1})
			return err == nil
		})
	}
	b.StartTimer()
	for _, rv := range []string{"", "0"} {
		name := "pod-list500-etcd"
		if rv == "0" {
			name = "pod-list500-cache"
		}
		b.Run(name, func(b *testing.B) {
			paired(b, func(cs kubernetes.Interface) error {
				l, err := cs.CoreV1().Pods("list").List(ctx, metav1.ListOptions{ResourceVersion: rv})
				if err == nil && len(l.Items) != 500 {
					err = fmt.Errorf("listed %d pods, want 500", len(l.Items))
				}
				return err
			})
		})
	}
}
