// Command health reads one Kubernetes object as JSON on stdin and prints, as one JSON line, how two
// GitOps consumers judge it. kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status, used by Flux and
// kubectl-wait-like tools) is status.Compute on the object as an unstructured.Unstructured. Argo CD
// is the Lua health check given as the only argument, run in gopher-lua the way Argo CD's util/lua
// runs a custom check from argocd-cm: only the package, base and table libraries open (useOpenLibs
// is off for argocd-cm checks), a 1 s deadline, the object as the global `obj`, and the table the
// script returns read as {status, message}. Argo CD reports a failing script as health Unknown with
// the error as the message; so does this.
//
// Usage:
//
//	health docs/argocd/health.lua < object.json
//	{"kstatus":"InProgress","kstatusMessage":"…","argo":"Progressing","argoMessage":"…"}
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Kstatus        string `json:"kstatus"`
	KstatusMessage string `json:"kstatusMessage"`
	Argo           string `json:"argo"`
	ArgoMessage    string `json:"argoMessage"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: health <health.lua> < object.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("read the Lua script: %v", err)
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("read stdin: %v", err)
	}
	// The apiserver's JSON decoded as client-go decodes it: whole numbers become int64, which is
	// what both kstatus (NestedInt64) and Argo CD's controller see.
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(raw); err != nil {
		fail("stdin is not a Kubernetes object: %v", err)
	}

	var v verdict
	res, err := status.Compute(obj)
	if err != nil {
		fail("kstatus: %v", err)
	}
	v.Kstatus, v.KstatusMessage = res.Status.String(), res.Message
	v.Argo, v.ArgoMessage = argoHealth(obj.Object, string(script))

	out, err := json.Marshal(v)
	if err != nil {
		fail("encode: %v", err)
	}
	fmt.Println(string(out))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "health: "+format+"\n", args...)
	os.Exit(1)
}

var argoStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

// argoHealth runs the check as Argo CD does and returns its status and message.
func argoHealth(obj map[string]any, script string) (string, string) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return "Unknown", err.Error()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))

	fn, err := l.LoadString(script)
	if err == nil {
		l.Push(fn)
		err = l.PCall(0, lua.MultRet, nil)
	}
	if err != nil {
		if apiErr, ok := err.(*lua.ApiError); ok && apiErr.Type == lua.ApiErrorRun {
			apiErr.StackTrace = ""
		}
		return "Unknown", err.Error()
	}

	switch ret := l.Get(-1).(type) {
	case *lua.LTable:
		st, msg := ret.RawGetString("status"), ret.RawGetString("message")
		if st == lua.LNil && msg == lua.LNil {
			// Argo CD: an empty table is an empty health status.
			return "", ""
		}
		s, ok1 := optString(st)
		m, ok2 := optString(msg)
		if !ok1 || !ok2 {
			return "Unknown", "hs.status and hs.message must be strings"
		}
		if !argoStatuses[s] {
			return "Unknown", "Lua returned an invalid health status"
		}
		return s, m
	default:
		if ret == lua.LNil {
			return "", ""
		}
		return "Unknown", fmt.Sprintf("expect table output from Lua script, not %s", ret.Type())
	}
}

func optString(v lua.LValue) (string, bool) {
	switch s := v.(type) {
	case lua.LString:
		return string(s), true
	default:
		return "", v == lua.LNil
	}
}

// toLua turns decoded JSON into Lua values as Argo CD's util/lua does: maps become hash tables,
// slices become sequences (1-based), numbers of every Go kind become Lua numbers, except
// json.Number, which becomes a string; null (and anything else) becomes nil, so a key whose value
// is null reads as absent in Lua.
func toLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case json.Number:
		return lua.LString(x)
	case int:
		return lua.LNumber(x)
	case int32:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case []any:
		t := l.CreateTable(len(x), 0)
		for _, item := range x {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(x))
		for k, item := range x {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}
