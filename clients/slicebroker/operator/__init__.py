"""The Kubernetes operator: makes the broker the gatekeeper of accelerator pods.

A mutating admission webhook gates every pod that asks for a GPU or NPU (`slicebroker.io/grant`
scheduling gate plus a release finalizer); the controller maps the pod's namespace to a project,
requests a grant, pins the pod to the granted node and removes the gate in one update, renews the
lease while the pod lives and releases it when the pod ends or is deleted. It also registers the
cluster's accelerator Nodes in inventory and serves `SliceClaim`s, leases not tied to one pod.
"""
