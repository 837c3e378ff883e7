package manager

import (
	"context"
	"log/slog"
	"os"

	"github.com/skiff-io/skiff/internal/cloud/servicelb"
	"github.com/skiff-io/skiff/internal/controller/admissionpolicystatus"
	"github.com/skiff-io/skiff/internal/controller/bootstraptoken"
	"github.com/skiff-io/skiff/internal/controller/certificates"
	"github.com/skiff-io/skiff/internal/controller/cronjob"
	"github.com/skiff-io/skiff/internal/controller/daemonset"
	"github.com/skiff-io/skiff/internal/controller/deployment"
	"github.com/skiff-io/skiff/internal/controller/disruption"
	"github.com/skiff-io/skiff/internal/controller/endpoints"
	"github.com/skiff-io/skiff/internal/controller/endpointslice"
	"github.com/skiff-io/skiff/internal/controller/endpointslicemirroring"
	"github.com/skiff-io/skiff/internal/controller/garbagecollector"
	"github.com/skiff-io/skiff/internal/controller/job"
	"github.com/skiff-io/skiff/internal/controller/namespace"
	"github.com/skiff-io/skiff/internal/controller/nodeipam"
	"github.com/skiff-io/skiff/internal/controller/nodelifecycle"
	"github.com/skiff-io/skiff/internal/controller/persistentvolume"
	"github.com/skiff-io/skiff/internal/controller/podautoscaler"
	"github.com/skiff-io/skiff/internal/controller/pvprotection"
	"github.com/skiff-io/skiff/internal/controller/replicaset"
	"github.com/skiff-io/skiff/internal/controller/replication"
	"github.com/skiff-io/skiff/internal/controller/resourcequota"
	"github.com/skiff-io/skiff/internal/controller/serviceaccount"
	"github.com/skiff-io/skiff/internal/controller/statefulset"
	"github.com/skiff-io/skiff/internal/controller/ttlafterfinished"
	"github.com/skiff-io/skiff/internal/controller/volumeexpand"
	"github.com/skiff-io/skiff/internal/localpath"
)

// accounts names the service account each controller acts as (in
// kube-system), upstream's name for the controller that does its work;
// the bootstrap policy binds system:controller:<account> to it.
var accounts = map[string]string{
	"garbagecollector":                "generic-garbage-collector",
	"nodelifecycle":                   "node-controller",
	"nodeipam":                        "node-controller",
	"job":                             "job-controller",
	"cronjob":                         "cronjob-controller",
	"ttl-after-finished":              "ttl-after-finished-controller",
	"daemonset":                       "daemon-set-controller",
	"deployment":                      "deployment-controller",
	"endpointslice":                   "endpointslice-controller",
	endpointslicemirroring.Name:       "endpointslicemirroring-controller",
	"endpoints":                       "endpoint-controller",
	"serviceaccount":                  "service-account-controller",
	"resourcequota":                   "resourcequota-controller",
	"disruption":                      "disruption-controller",
	"namespace":                       "namespace-controller",
	servicelb.Name:                    "service-controller",
	replicaset.Name:                   "replicaset-controller",
	replication.Name:                  "replication-controller",
	"statefulset":                     "statefulset-controller",
	"horizontalpodautoscaling":        "horizontal-pod-autoscaler",
	certificates.ApproverName:         "certificate-controller",
	certificates.SignerName:           "certificate-controller",
	certificates.CleanerName:          "certificate-controller",
	bootstraptoken.Name:               "token-cleaner",
	admissionpolicystatus.Name:        "validatingadmissionpolicy-status-controller",
	persistentvolume.Name:             "persistent-volume-binder",
	pvprotection.ClaimControllerName:  "pvc-protection-controller",
	pvprotection.VolumeControllerName: "pv-protection-controller",
	localpath.Name:                    "local-path-provisioner",
	volumeexpand.Name:                 "expand-controller",

	certificates.PodCertificateRequestCleanerName: "podcertificaterequestcleaner",
}

// Account is the service account (in kube-system) the controller named
// acts as.
func Account(controller string) string { return accounts[controller] }

// known maps each controller's --controllers name to its constructor.
var known = map[string]Constructor{
	admissionpolicystatus.Name: func(c Context) (Runnable, error) {
		return admissionpolicystatus.New(c.Client, c.Informers)
	},
	persistentvolume.Name: func(c Context) (Runnable, error) {
		return persistentvolume.New(c.Client, c.Informers, c.Recorder(persistentvolume.EventComponent))
	},
	pvprotection.ClaimControllerName: func(c Context) (Runnable, error) {
		return pvprotection.NewClaimProtection(c.Client, c.Informers)
	},
	volumeexpand.Name: func(c Context) (Runnable, error) {
		return volumeexpand.New(c.Client, c.Informers, c.Recorder(volumeexpand.EventComponent),
			volumeexpand.Options{Provisioners: []string{localpath.Provisioner}})
	},
	localpath.Name: func(c Context) (Runnable, error) {
		return localpath.New(c.Client, c.Informers, c.Recorder(localpath.EventComponent))
	},
	pvprotection.VolumeControllerName: func(c Context) (Runnable, error) {
		return pvprotection.NewVolumeProtection(c.Client, c.Informers)
	},
	"garbagecollector": func(c Context) (Runnable, error) {
		return garbagecollector.New(c.RESTConfig, c.Recorder("garbage-collector-controller"))
	},
	"nodelifecycle": func(c Context) (Runnable, error) {
		return nodelifecycle.New(c.Client, c.Informers, c.Recorder("node-controller"),
			nodelifecycle.Options{GracePeriod: c.Config.NodeMonitorGracePeriod})
	},
	"nodeipam": func(c Context) (Runnable, error) {
		return nodeipam.New(c.Client, c.Informers, c.Recorder("node-controller"),
			nodeipam.Options{ClusterCIDR: c.Config.ClusterCIDR})
	},
	"job": func(c Context) (Runnable, error) {
		return job.New(c.Client, c.Informers, c.Recorder("job-controller"))
	},
	"cronjob": func(c Context) (Runnable, error) {
		return cronjob.New(c.Client, c.Informers, c.Recorder("cronjob-controller"))
	},
	"ttl-after-finished": func(c Context) (Runnable, error) {
		return ttlafterfinished.New(c.Client, c.Informers, c.Recorder("ttl-after-finished-controller"))
	},
	"daemonset": func(c Context) (Runnable, error) {
		return daemonset.New(c.Client, c.Informers, c.Recorder("daemonset-controller"))
	},
	"deployment": func(c Context) (Runnable, error) {
		return deployment.New(c.Client, c.Informers, c.Recorder("deployment-controller"))
	},
	"endpointslice": func(c Context) (Runnable, error) {
		return endpointslice.New(c.Client, c.Informers, c.Recorder("endpointslice-controller"))
	},
	endpointslicemirroring.Name: func(c Context) (Runnable, error) {
		return endpointslicemirroring.New(c.Client, c.Informers, c.Recorder("endpointslicemirroring-controller"))
	},
	"endpoints": func(c Context) (Runnable, error) {
		return endpoints.New(c.Client, c.Informers, c.Recorder("endpoint-controller"))
	},
	"serviceaccount": func(c Context) (Runnable, error) {
		ca := c.Config.RootCA
		if len(ca) == 0 {
			ca = c.RESTConfig.CAData
		}
		if len(ca) == 0 && c.RESTConfig.CAFile != "" {
			b, err := os.ReadFile(c.RESTConfig.CAFile)
			if err != nil {
				return nil, err
			}
			ca = b
		}
		publisher, err := c.As("root-ca-cert-publisher")
		if err != nil {
			return nil, err
		}
		return serviceaccount.New(c.Client, c.Informers, c.Recorder("serviceaccount-controller"), serviceaccount.Options{
			RootCA: ca, CurrentRootCA: c.Config.CurrentRootCA, RootCAChanged: c.Config.RootCAChanged, RootCAClient: publisher})
	},
	"resourcequota": func(c Context) (Runnable, error) {
		return resourcequota.New(c.Client, c.Informers, c.Recorder("resourcequota-controller"))
	},
	"disruption": func(c Context) (Runnable, error) {
		return disruption.New(c.Client, c.Informers, c.Recorder("controllermanager"))
	},
	"namespace": func(c Context) (Runnable, error) { return namespace.New(c.RESTConfig) },
	servicelb.Name: func(c Context) (Runnable, error) {
		// A fresh local provider per build: each leadership term rebuilds
		// the address assignments from the Services.
		return servicelb.New(c.Client, c.Informers, c.Recorder("service-controller"), servicelb.Options{Pool: c.Config.LBPool})
	},
	replicaset.Name: func(c Context) (Runnable, error) {
		return replicaset.New(c.Client, c.Informers, c.Recorder("replicaset-controller"))
	},
	replication.Name: func(c Context) (Runnable, error) {
		return replication.New(c.Client, c.Informers, c.Recorder(replication.EventComponent))
	},
	"statefulset": func(c Context) (Runnable, error) {
		return statefulset.New(c.Client, c.Informers, c.Recorder("statefulset-controller"))
	},
	"horizontalpodautoscaling": func(c Context) (Runnable, error) {
		return podautoscaler.NewForConfig(c.RESTConfig, c.Client, c.Informers, c.Recorder("horizontal-pod-autoscaler"),
			podautoscaler.Options{SyncPeriod: c.Config.HPASyncPeriod, Config: c.Config.HPA})
	},
	certificates.ApproverName: func(c Context) (Runnable, error) {
		return certificates.NewApprover(c.Client, c.Informers)
	},
	certificates.SignerName: func(c Context) (Runnable, error) {
		if c.Config.SigningCA == nil {
			// As upstream without --cluster-signing-cert-file: the
			// others run, csrsigning does not.
			slog.Default().Warn("no signing CA configured: csrsigning issues no certificates")
			return idle{}, nil
		}
		return certificates.NewSigner(c.Client, c.Informers,
			certificates.SignerOptions{CA: c.Config.SigningCA, Duration: c.Config.SigningDuration})
	},
	certificates.CleanerName: func(c Context) (Runnable, error) {
		return certificates.NewCleaner(c.Client, c.Informers)
	},
	certificates.PodCertificateRequestCleanerName: func(c Context) (Runnable, error) {
		return certificates.NewPodCertificateRequestCleaner(c.Client, c.Informers)
	},
	bootstraptoken.Name: func(c Context) (Runnable, error) {
		return bootstraptoken.New(c.Client, c.Informers)
	},
}

// idle is a controller with nothing to do: Start waits for ctx to end.
type idle struct{}

func (idle) Start(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
