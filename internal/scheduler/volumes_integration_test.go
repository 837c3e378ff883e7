package scheduler_test

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-io/skiff/internal/scheduler"
	"github.com/skiff-io/skiff/test/framework"
)

// TestVolumesAgainstServer drives the volume filters and VolumeBinding's
// PreBind against the real server, the test playing the volume controller
// and the provisioner (skiff runs neither): claims that are missing or
// unbound Immediate ones keep a pod pending with upstream's message until
// they change; a WaitForFirstConsumer claim gets the selected node for its
// provisioner, or its static volume a claimRef, and the pod is bound once
// the claim is.
func TestVolumesAgainstServer(t *testing.T) {
	// No default class: claims without one stay without.
	cluster := framework.StartInProcess(t, framework.WithControllers(), framework.WithoutLocalStorage())
	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	createNode(t, ctx, client, "node-a", "4", map[string]string{v1.LabelTopologyZone: "a"})
	createNode(t, ctx, client, "node-b", "4", map[string]string{v1.LabelTopologyZone: "b"})

	// The scheduler acts as the in-process one does, so that its roles
	// (system:kube-scheduler, system:volume-scheduler) are checked too.
	schedCfg := rest.CopyConfig(cfg)
	schedCfg.Impersonate = rest.ImpersonationConfig{UserName: "system:kube-scheduler"}
	schedClient := kubernetes.NewForConfigOrDie(schedCfg)
	factory := informers.NewSharedInformerFactory(schedClient, 0)
	recorder := record.NewFakeRecorder(1000)
	s, err := scheduler.New(schedClient, factory, recorder, scheduler.Config{VolumeBindTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Start did not return after cancel")
		}
	}()

	_, err = client.Discovery().ServerResourcesForGroupVersion("storage.k8s.io/v1")
	classesServed := err == nil
	addClass := func(t *testing.T, class *storagev1.StorageClass) {
		t.Helper()
		if classesServed {
			if _, err := client.StorageV1().StorageClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := s.AddStorageClass(class); err != nil {
			t.Fatal(err)
		}
	}
	createClaim := func(t *testing.T, name, class string, modes ...v1.PersistentVolumeAccessMode) {
		t.Helper()
		if len(modes) == 0 {
			modes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
		}
		c := &v1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: v1.PersistentVolumeClaimSpec{
				AccessModes: modes,
				Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}
		if class != "" {
			c.Spec.StorageClassName = &class
		}
		if _, err := client.CoreV1().PersistentVolumeClaims("default").Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create claim %s: %v", name, err)
		}
	}
	createPV := func(t *testing.T, name, class, zone string, mods ...func(*v1.PersistentVolume)) *v1.PersistentVolume {
		t.Helper()
		pv := &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1.PersistentVolumeSpec{
				StorageClassName:       class,
				Capacity:               v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:            []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
				PersistentVolumeSource: v1.PersistentVolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/data/" + name}},
				NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
					MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: []string{zone}}},
				}}}},
			},
		}
		for _, m := range mods {
			m(pv)
		}
		created, err := client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create volume %s: %v", name, err)
		}
		return created
	}
	// bindClaim does the volume controller's part of a binding.
	bindClaim := func(t *testing.T, name, pv string) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			c, err := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			c.Spec.VolumeName = pv
			metav1.SetMetaDataAnnotation(&c.ObjectMeta, "pv.kubernetes.io/bind-completed", "yes")
			_, err = client.CoreV1().PersistentVolumeClaims("default").Update(ctx, c, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("bind claim %s: %v", name, err)
		}
	}
	getClaim := func(name string) *v1.PersistentVolumeClaim {
		c, err := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return &v1.PersistentVolumeClaim{}
		}
		return c
	}
	withClaim := func(name string) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "data",
				VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: name}}})
		}
	}
	pendingWith := func(t *testing.T, pod, msg string) {
		t.Helper()
		framework.Eventually(t, 30*time.Second, func() bool {
			c := podScheduledCondition(getPod(ctx, client, pod))
			return c != nil && c.Status == v1.ConditionFalse && c.Message == msg
		})
	}
	scheduledTo := func(t *testing.T, pod, node string) {
		t.Helper()
		framework.Eventually(t, 30*time.Second, func() bool {
			p := getPod(ctx, client, pod)
			return p != nil && p.Spec.NodeName == node
		})
	}
	const notHelpful = " preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."

	t.Run("missing, then Immediate, then bound claim", func(t *testing.T) {
		createPod(t, ctx, client, "db", "100m", withClaim("db-data"))
		pendingWith(t, "db", `0/2 nodes are available: persistentvolumeclaim "db-data" not found.`+notHelpful)
		createClaim(t, "db-data", "")
		pendingWith(t, "db", "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."+notHelpful)
		createPV(t, "pv-db", "", "b")
		bindClaim(t, "db-data", "pv-db")
		scheduledTo(t, "db", "node-b")
	})

	t.Run("bound volume on no node", func(t *testing.T) {
		createPV(t, "pv-nowhere", "", "c")
		createClaim(t, "nowhere", "")
		bindClaim(t, "nowhere", "pv-nowhere")
		createPod(t, ctx, client, "nowhere", "100m", withClaim("nowhere"))
		pendingWith(t, "nowhere", "0/2 nodes are available: 2 node(s) had volume node affinity conflict."+notHelpful)
	})

	t.Run("WaitForFirstConsumer, provisioned", func(t *testing.T) {
		addClass(t, &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: "example.com/fast",
			VolumeBindingMode: ptr(storagev1.VolumeBindingWaitForFirstConsumer),
			AllowedTopologies: []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{
				{Key: v1.LabelTopologyZone, Values: []string{"a"}},
			}}},
		})
		createClaim(t, "fast-data", "fast")
		createPod(t, ctx, client, "fast", "100m", withClaim("fast-data"))
		framework.Eventually(t, 30*time.Second, func() bool {
			return getClaim("fast-data").Annotations["volume.kubernetes.io/selected-node"] == "node-a"
		})
		if p := getPod(ctx, client, "fast"); p.Spec.NodeName != "" {
			t.Fatalf("pod bound to %s before its claim", p.Spec.NodeName)
		}
		// The provisioner creates the volume, the volume controller binds.
		createPV(t, "pv-fast", "fast", "a", func(pv *v1.PersistentVolume) {
			c := getClaim("fast-data")
			pv.Spec.ClaimRef = &v1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "default", Name: c.Name, UID: c.UID}
		})
		bindClaim(t, "fast-data", "pv-fast")
		scheduledTo(t, "fast", "node-a")
	})

	t.Run("WaitForFirstConsumer, provisioning failed", func(t *testing.T) {
		addClass(t, &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{Name: "flaky"}, Provisioner: "example.com/flaky",
			VolumeBindingMode: ptr(storagev1.VolumeBindingWaitForFirstConsumer),
		})
		createClaim(t, "flaky-data", "flaky")
		createPod(t, ctx, client, "flaky", "100m", withClaim("flaky-data"))
		framework.Eventually(t, 30*time.Second, func() bool {
			return getClaim("flaky-data").Annotations["volume.kubernetes.io/selected-node"] != ""
		})
		// The provisioner (named on the claim by the volume controller)
		// gives up: it removes the annotation, and the scheduler tries
		// again.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			c := getClaim("flaky-data")
			delete(c.Annotations, "volume.kubernetes.io/selected-node")
			metav1.SetMetaDataAnnotation(&c.ObjectMeta, "volume.kubernetes.io/storage-provisioner", "example.com/flaky")
			_, err := client.CoreV1().PersistentVolumeClaims("default").Update(ctx, c, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := `Warning FailedScheduling running PreBind plugin "VolumeBinding": binding volumes: provisioning failed for PVC "flaky-data"`
		framework.Eventually(t, 30*time.Second, func() bool {
			for {
				select {
				case e := <-recorder.Events:
					if e == want {
						return true
					}
				default:
					return false
				}
			}
		})
		framework.Eventually(t, 30*time.Second, func() bool {
			return getClaim("flaky-data").Annotations["volume.kubernetes.io/selected-node"] != ""
		})
		node := getClaim("flaky-data").Annotations["volume.kubernetes.io/selected-node"]
		createPV(t, "pv-flaky", "flaky", map[string]string{"node-a": "a", "node-b": "b"}[node])
		bindClaim(t, "flaky-data", "pv-flaky")
		scheduledTo(t, "flaky", node)
	})

	t.Run("WaitForFirstConsumer, static volume", func(t *testing.T) {
		addClass(t, &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{Name: "local"}, Provisioner: "kubernetes.io/no-provisioner",
			VolumeBindingMode: ptr(storagev1.VolumeBindingWaitForFirstConsumer),
		})
		createClaim(t, "local-data", "local")
		createPod(t, ctx, client, "local", "100m", withClaim("local-data"))
		pendingWith(t, "local", "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."+notHelpful)
		// The volume controller makes the volume Available.
		pv := createPV(t, "pv-local", "local", "b")
		pv.Status.Phase = v1.VolumeAvailable
		if _, err := client.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, func() bool {
			pv, err := client.CoreV1().PersistentVolumes().Get(ctx, "pv-local", metav1.GetOptions{})
			c := getClaim("local-data")
			return err == nil && pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.Name == "local-data" && pv.Spec.ClaimRef.UID == c.UID &&
				pv.Annotations["pv.kubernetes.io/bound-by-controller"] == "yes"
		})
		if p := getPod(ctx, client, "local"); p.Spec.NodeName != "" {
			t.Fatalf("pod bound to %s before its claim", p.Spec.NodeName)
		}
		bindClaim(t, "local-data", "pv-local")
		scheduledTo(t, "local", "node-b")
	})

	t.Run("ReadWriteOncePod", func(t *testing.T) {
		createPV(t, "pv-once", "", "a", func(pv *v1.PersistentVolume) {
			pv.Spec.AccessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOncePod}
		})
		createClaim(t, "once", "", v1.ReadWriteOncePod)
		bindClaim(t, "once", "pv-once")
		createPod(t, ctx, client, "once-1", "100m", withClaim("once"))
		scheduledTo(t, "once-1", "node-a")
		createPod(t, ctx, client, "once-2", "100m", withClaim("once"))
		pendingWith(t, "once-2", "0/2 nodes are available: 2 node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode."+
			" preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.")
		if err := client.CoreV1().Pods("default").Delete(ctx, "once-1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		scheduledTo(t, "once-2", "node-a")
	})
}

func ptr[T any](v T) *T { return &v }
