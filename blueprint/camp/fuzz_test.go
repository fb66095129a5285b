package camp

import (
	"errors"
	"fmt"
	"testing"
)

// FuzzParse: any YAML is a plan or an error that wraps ErrInvalid, never
// a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"name: one\nservices:\n- type: docker:busybox\n  id: web\n",
		"location: localhost\nservices:\n- type: docker:nginx:1.25\n  brooklyn.config:\n    openPorts: [80]\n",
		"services:\n- type: org.apache.brooklyn.entity.group.DynamicCluster\n  brooklyn.config:\n    initialSize: 2\n    memberSpec:\n      $brooklyn:entitySpec:\n        type: docker:busybox\n",
		"services:\n- type: docker:busybox\n  env:\n    URL: $brooklyn:formatString(\"http://%s\", component(\"db\").attributeWhenReady(\"host.address\"))\n",
		"", "[", "services: 5", "services:\n- {}\n", "a: &x [*x]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		n := 0
		_, err := Parse(src, func() string { n++; return fmt.Sprint("e", n) })
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
	})
}

// FuzzParseDSL: call strings parse or are refused, never panic.
func FuzzParseDSL(f *testing.F) {
	for _, s := range []string{
		`$brooklyn:formatString("http://%s:%d", component("db").attributeWhenReady("host"), 80)`,
		`$brooklyn:component("child", "web").config("port")`,
		`$brooklyn:regexReplacement("a-b", "-", "_")`, `$brooklyn:literal("x")`, `$brooklyn:self().entityId()`,
		`$brooklyn:`, `$brooklyn:f(`, `$brooklyn:f("\"")`, `$brooklyn:a.b.c`, `$brooklyn:f(1, 2.5, true, "s")`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseDSL(s)
	})
}
