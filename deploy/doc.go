// Package deploy holds no Go code of ebb's: it is the deployment kit (the
// compose file, the Kubernetes manifests, the Prometheus config and the
// Grafana dashboard), and its test checks that those files agree with the
// binaries' flags, ports and metric names.
package deploy
