package discovery

import (
	"fmt"
	"strconv"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

var endpointSliceTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "AddressType", Type: "string", Description: discoveryv1.EndpointSlice{}.SwaggerDoc()["addressType"]},
		{Name: "Ports", Type: "string", Description: discoveryv1.EndpointSlice{}.SwaggerDoc()["ports"]},
		{Name: "Endpoints", Type: "string", Description: discoveryv1.EndpointSlice{}.SwaggerDoc()["endpoints"]},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		eps, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return nil
		}
		var ports, addrs []string
		for _, p := range eps.Ports {
			switch {
			case p.Port != nil:
				ports = append(ports, strconv.Itoa(int(*p.Port)))
			case p.Name != nil:
				ports = append(ports, *p.Name)
			default:
				ports = append(ports, "*")
			}
		}
		for _, ep := range eps.Endpoints {
			addrs = append(addrs, ep.Addresses...)
		}
		return []interface{}{eps.Name, string(eps.AddressType), firstThree(ports), firstThree(addrs), registry.Age(eps)}
	},
}

// firstThree joins up to three items and counts the rest, as upstream
// prints ports and endpoints ("10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...").
func firstThree(items []string) string {
	const max = 3
	if len(items) == 0 {
		return "<unset>"
	}
	if len(items) <= max {
		return strings.Join(items, ",")
	}
	return fmt.Sprintf("%s + %d more...", strings.Join(items[:max], ","), len(items)-max)
}
