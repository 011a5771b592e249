"""The Go text/template interpreter: each construct as Go renders it, and each error."""

from typing import Any

import pytest

from fma.modelservice.gotemplate import Function, TemplateError, render, standard_functions

DATA: dict[str, Any] = {
    "Name": "facebook-opt-125m",
    "Empty": "",
    "Zero": 0,
    "List": ["a", "b", "c"],
    "Map": {"b": 2, "a": 1},
    "Nested": {"Inner": {"Value": "deep"}},
    "Flag": True,
    "Nil": None,
}


def _functions() -> dict[str, Function]:
    ports = {"app_port": 8000, "internal_port": 8200}

    def get_port(name: object) -> int:
        if not isinstance(name, str) or name not in ports:
            raise ValueError(f"no port named {name!r}")
        return ports[name]

    return {**standard_functions(), "getPort": Function(get_port, 1, 1)}


def run(source: str, data: dict[str, Any] | None = None) -> str:
    return render(source, DATA if data is None else data, _functions())


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("plain text, no actions", "plain text, no actions"),
        ("{{ .Name }}", "facebook-opt-125m"),
        ("{{.Name}}", "facebook-opt-125m"),
        ("{{ .Nested.Inner.Value }}", "deep"),
        ("{{ . }}", None),
        ('port: {{ "app_port" | getPort }}', "port: 8000"),
        ('{{ getPort "internal_port" }}', "8200"),
        ('"--vllm-port={{ "internal_port" | getPort }}"', '"--vllm-port=8200"'),
        ("{{ .Empty }}|", "|"),
        ("{{ .Zero }} {{ .Flag }} {{ .Nil }}", "0 true <no value>"),
        ("{{ .List }} {{ .Map }}", "[a b c] map[a:1 b:2]"),
        (
            "{{ 42 }} {{ -7 }} {{ 0x1F }} {{ 1_000 }} {{ 1.5 }} {{ 1e21 }} {{ 2.0 }}",
            "42 -7 31 1000 1.5 1e+21 2",
        ),
        ("{{ 'a' }} {{ true }} {{ print nil }}", "97 true <nil>"),
        ('{{ "tab\\there" }}{{ `raw\\n` }}', "tab\there" + "raw\\n"),
        ("{{/* a comment */}}x", "x"),
        ("a  {{- /* trimmed */ -}}  b", "ab"),
    ],
)
def test_values_print_as_go_prints_them(source: str, expected: str | None) -> None:
    if expected is None:
        assert run(source, {"X": 1}) == "map[X:1]"
    else:
        assert run(source) == expected


def test_trim_markers_eat_all_adjacent_white_space() -> None:
    source = "args:\n  - a\n  {{- if .Flag }}\n  - b\n  {{- end }}\n"
    assert run(source) == "args:\n  - a\n  - b\n"
    assert run("x {{- .Name -}} \n\n y") == "xfacebook-opt-125my"
    # "{{-3}}" is the number -3, not a trim marker.
    assert run("a {{-3}} b") == "a -3 b"


def test_pipelines_pass_the_value_as_the_last_argument() -> None:
    assert run('{{ .Name | replace "-" "_" | upper }}') == "FACEBOOK_OPT_125M"
    assert run('{{ .Empty | default "fallback" }}') == "fallback"
    assert run('{{ .Name | printf "%s:%d" }}') == "facebook-opt-125m:%!d(MISSING)"
    assert run('{{ printf "%s:%d" .Name 8000 }}') == "facebook-opt-125m:8000"
    assert run('{{ ("a" | upper) }}{{ (print "b" "c") }}') == "Abc"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ if .Flag }}yes{{ end }}", "yes"),
        ("{{ if .Empty }}yes{{ else }}no{{ end }}", "no"),
        ("{{ if .Empty }}1{{ else if .Zero }}2{{ else if .List }}3{{ else }}4{{ end }}", "3"),
        ("{{ if and .Flag .Name }}both{{ end }}", "both"),
        ("{{ if or .Empty .Zero }}x{{ else }}neither{{ end }}", "neither"),
        ("{{ if not .Empty }}not{{ end }}", "not"),
        ('{{ if eq .Name "x" "facebook-opt-125m" }}eq{{ end }}', "eq"),
        (
            "{{ if lt 1 2 }}lt{{ end }}{{ if ge 2 2 }}ge{{ end }}{{ if ne 1 2 }}ne{{ end }}",
            "ltgene",
        ),
        ("{{ with .Nested.Inner }}{{ .Value }}{{ end }}", "deep"),
        ("{{ with .Empty }}x{{ else }}empty{{ end }}", "empty"),
        ("{{ with .Empty }}1{{ else with .Name }}{{ . }}{{ end }}", "facebook-opt-125m"),
        ("{{ range .List }}[{{ . }}]{{ end }}", "[a][b][c]"),
        ("{{ range $i, $v := .List }}{{ $i }}={{ $v }} {{ end }}", "0=a 1=b 2=c "),
        ("{{ range $k, $v := .Map }}{{ $k }}:{{ $v }},{{ end }}", "a:1,b:2,"),
        ("{{ range .Nil }}x{{ else }}none{{ end }}", "none"),
        ("{{ range 3 }}{{ . }}{{ end }}", "012"),
        ('{{ range .List }}{{ if eq . "b" }}{{ continue }}{{ end }}{{ . }}{{ end }}', "ac"),
        ('{{ range .List }}{{ if eq . "b" }}{{ break }}{{ end }}{{ . }}{{ end }}', "a"),
        ("{{ range .List }}{{ $.Name }}{{ break }}{{ end }}", "facebook-opt-125m"),
        ("{{ $x := .Name }}{{ $x }}", "facebook-opt-125m"),
        ('{{ $x := "a" }}{{ if .Flag }}{{ $x = "b" }}{{ end }}{{ $x }}', "b"),
        ('{{ len .List }} {{ len .Name }} {{ index .List 1 }} {{ index .Map "b" }}', "3 17 b 2"),
    ],
)
def test_control_structures(source: str, expected: str) -> None:
    assert run(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('{{ .Name | quote }} {{ "x" | squote }}', "\"facebook-opt-125m\" 'x'"),
        (
            '{{ "  pad " | trim }}|{{ trimPrefix "face" .Name }}|{{ trimSuffix "-125m" .Name }}',
            "pad|book-opt-125m|facebook-opt",
        ),
        (
            '{{ hasPrefix "face" .Name }} {{ contains "opt" .Name }} {{ hasSuffix "x" .Name }}',
            "true true false",
        ),
        ('{{ lower "ABC" }}{{ title "a b" }}', "abcA B"),
        ('{{ join "," .List }} {{ splitList "-" .Name }}', "a,b,c [facebook opt 125m]"),
        ("{{ add 1 2 3 }} {{ sub 5 2 }} {{ mul 2 3 }} {{ div 7 2 }} {{ add1 1 }}", "6 3 6 3 2"),
        ('{{ max 1 5 2 }} {{ min 4 2 }} {{ int "42" }} {{ toString 5 }}', "5 2 42 5"),
        ('{{ ternary "y" "n" .Flag }} {{ empty .Zero }} {{ coalesce .Empty "c" }}', "y true c"),
        ('{{ list 1 "a" }}{{ indent 2 "x" }}{{ nindent 2 "y" }}', "[1 a]  x\n  y"),
        ('{{ cat "a" 1 }}', "a 1"),
    ],
)
def test_sprig_functions(source: str, expected: str) -> None:
    assert run(source) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ .Missing }}", "line 1: unknown key .Missing (missingkey=error)"),
        ("x\n{{ .Nested.Missing }}", "line 2: unknown key .Nested.Missing (missingkey=error)"),
        ("{{ .Name.Sub }}", "line 1: can't evaluate field Sub in type string"),
        ("{{ .Nil.Sub }}", "line 1: nil pointer evaluating .Nil.Sub"),
        ("{{ nosuch }}", 'line 1: function "nosuch" not defined'),
        ("{{ .Name", "line 1: unclosed action"),
        ("{{ if .Flag }}x", "line 1: {{if}} lacks its {{end}}"),
        ("{{ end }}", "line 1: unexpected {{end}}"),
        ("{{ $undefined }}", "line 1: undefined variable '$undefined'"),
        (
            '{{ "app_port" | getPort "x" }}',
            "line 1: wrong number of args for getPort: want 1 got 2",
        ),
        ('{{ "nope" | getPort }}', "line 1: error calling getPort: no port named 'nope'"),
        ("{{ .Name 1 }}", "line 1: can't give argument to non-function .Name"),
        (
            '{{ template "x" }}',
            "line 1: {{template}} is not supported: a base config value is one template",
        ),
        ("{{ break }}", "line 1: {{break}} outside {{range}}"),
        ('{{ "unterminated }}', "line 1: unterminated quoted string"),
        ('{{ "bad \\q" }}', 'line 1: invalid escape \\q in "bad \\q"'),
        (
            '{{ eq 1 "1" }}',
            "line 1: error calling eq: incompatible types for comparison: int and string",
        ),
        ("{{ range .Name }}{{ end }}", "line 1: range can't iterate over facebook-opt-125m"),
        ("{{ /* unclosed", "line 1: unclosed comment"),
        ("{{ 1 ? 2 }}", "line 1: unexpected '?' in command"),
        ("{{ }}", "line 1: missing value for command"),
        ("{{ nil }}", "line 1: nil is not a command"),
    ],
)
def test_errors_are_one_line_with_the_line_number(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as error:
        run(source)
    assert str(error.value) == message
    assert "\n" not in str(error.value)


def test_printf_verbs() -> None:
    assert run(
        '{{ printf "%v %q %t %5d|%-4s|%.2f %x %%" .List .Name .Flag 42 "ab" 3.14159 255 }}'
    ) == ('[a b c] "facebook-opt-125m" true    42|ab  |3.14 ff %')
    assert run('{{ printf "%d" "x" }}') == "%!d(string=x)"
    assert run('{{ printf "%s" }}') == "%!s(MISSING)"
    assert run('{{ printf "a" 1 }}') == "a%!(EXTRA int=1)"
