package proxy

import _ "sigs.k8s.io/knftables"
