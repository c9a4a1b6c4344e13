package manifest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/kiln-build/kiln/manifest"
)

// Load the travis-style manifest of testdata/travis with values given as
// --set would: its install: lines become steps and its script: lines
// tests named script-1, script-2.
func ExampleLoad() {
	b, err := manifest.Load(context.Background(), "testdata/travis/app.yml", manifest.Options{
		Set: []string{"dependencies=[requests, flask]", "project=myapp"},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range b.Stages {
		fmt.Printf("stage %s from %s\n", s.Name, s.From)
		for _, st := range s.Steps {
			fmt.Printf("  %s: %s\n", st.Pos, st.Name)
		}
		for _, t := range s.Tests {
			fmt.Printf("  %s: test %s: %q\n", t.Pos, t.Name, t.Run.Args())
		}
	}
	fmt.Println("target:", b.Target)
	// Output:
	// stage main from python
	//   testdata/travis/app.yml:4:5: run: pip install requests
	//   testdata/travis/app.yml:4:5: run: pip install flask
	//   testdata/travis/app.yml:7:5: test script-1: ["/bin/sh" "-c" "pylint myapp tests/"]
	//   testdata/travis/app.yml:8:5: test script-2: ["/bin/sh" "-c" "nosetests --with-coverage --cover-package myapp"]
	// target: main
}

// An undefined variable is an error naming it and where it was written.
func ExampleLoad_undefined() {
	_, err := manifest.Load(context.Background(), "testdata/travis/app.yml", manifest.Options{
		Set: []string{"dependencies=[requests]"},
	})
	fmt.Println(err)
	// Output:
	// testdata/travis/app.yml:7:15: undefined variable "project": define it under vars: in the first document, in a --values file, or with --set project=VALUE
}

// A module used twice: its steps are inlined, named after it, and their
// positions lead from the use: step to the module's line.
func ExampleLoad_module() {
	b, err := manifest.Load(context.Background(), "testdata/modules/app.yml", manifest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, st := range b.Stages[0].Steps[:3] {
		fmt.Printf("%s\n  %s\n", st.Name, st.Pos)
	}
	// Output:
	// run: echo start
	//   testdata/modules/app.yml:7:5
	// add-user: run: adduser -D -u 1001 -s /bin/sh alice
	//   testdata/modules/app.yml:8:5 → testdata/modules/modules/user/module.yml:13:5
	// add-user: copy: files/profile -> /home/alice/.profile
	//   testdata/modules/app.yml:8:5 → testdata/modules/modules/user/module.yml:14:5
}
