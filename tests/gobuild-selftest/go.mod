// A dependency-free module for the gobuild.sh self-test (tests/bed_controlplane.rs): it builds in
// a second, so two builders at once can be raced cheaply.
module oms-data-operator/tests/gobuild-selftest

go 1.25.0
