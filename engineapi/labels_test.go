package engineapi

import "testing"

func TestHideBookkeeping(t *testing.T) {
	tests := []struct {
		name string
		in   string
		path []string
		want string // "" when in comes back untouched
	}{
		{name: "volume", in: `{"CreatedAt":"x","Driver":"local","Labels":{"a":"1","io.clocker.host":"h1"},"Name":"v","Options":null}`,
			path: []string{"Labels"}, want: `{"CreatedAt":"x","Driver":"local","Labels":{"a":"1"},"Name":"v","Options":null}`},
		{name: "only Clocker's: an empty object, as the engine shows no labels", in: `{"Labels":{"io.clocker.host":"h1","io.clocker.dns":"[\"10.0.0.1\"]"}}`,
			path: []string{"Labels"}, want: `{"Labels":{}}`},
		{name: "container inspect", in: `{"Id":"c","Labels":{"io.clocker.host":"outer"},"Config":{"Cmd":["sh","-c","echo \"}\""],"Labels":{"io.clocker.host":"h1","io.clocker.reschedule":"on-node-failure","z":"<&>"}},"Node":{}}`,
			path: []string{"Config", "Labels"},
			want: `{"Id":"c","Labels":{"io.clocker.host":"outer"},"Config":{"Cmd":["sh","-c","echo \"}\""],"Labels":{"io.clocker.reschedule":"on-node-failure","z":"<&>"}},"Node":{}}`},
		{name: "users' io.clocker labels stay", in: `{"Labels":{"io.clocker.group":"g","io.clocker.strategy":"random"}}`, path: []string{"Labels"}},
		{name: "null labels", in: `{"Labels":null,"X":"io.clocker.host"}`, path: []string{"Labels"}},
		{name: "no labels", in: `{"Name":"\"io.clocker.host\""}`, path: []string{"Labels"}},
		{name: "a key only in a value", in: `{"Labels":{"k":"\"io.clocker.host\":\"h1\""}}`, path: []string{"Labels"}},
		{name: "spaces", in: "{ \"Labels\" : { \"io.clocker.host\" : \"h1\" , \"b\":\"2\" } }", path: []string{"Labels"}, want: `{ "Labels" : {"b":"2"} }`},
		{name: "malformed", in: `{"Labels":{"io.clocker.host":`, path: []string{"Labels"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if got := HideBookkeeping([]byte(tt.in), tt.path...); string(got) != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestShowsBookkeeping(t *testing.T) {
	for raw, want := range map[string]bool{
		``:                                      false,
		`{"label":{"a=b":true}}`:                false,
		`{"label":{"io.clocker.host=h1":true}}`: true,
		`{"label":["io.clocker.host"]}`:         true,
		`{"label!":{"io.clocker.dns":true}}`:    true,
		`{"label":{"io.clocker.group=g":true}}`: false,
		`not json`:                              false,
	} {
		if got := ShowsBookkeeping(raw); got != want {
			t.Errorf("ShowsBookkeeping(%s) = %v, want %v", raw, got, want)
		}
	}
}
