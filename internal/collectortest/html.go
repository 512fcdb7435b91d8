package collectortest

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// HTMLRow is one table row of a page, as the DOM holds it.
type HTMLRow struct {
	// Attrs are the row's attributes, entities decoded (data-key, ...).
	Attrs map[string]string
	// Cells are the text of its cells, whitespace runs folded to one space.
	Cells []string
}

// ParseHTML parses a page (served HTML or a browser's rendered DOM) as a
// browser does, failing the test when it cannot.
func ParseHTML(t testing.TB, page string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parsing HTML: %v", err)
	}
	return doc
}

// Walk calls fn on every element of the tree, in document order.
func Walk(n *html.Node, fn func(*html.Node)) {
	if n.Type == html.ElementNode {
		fn(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		Walk(c, fn)
	}
}

// RowsBy returns the table rows of a page that carry the attribute key,
// by its value: the breaker status page's rows by data-key, for one.
func RowsBy(t testing.TB, page, key string) map[string]HTMLRow {
	t.Helper()
	rows := map[string]HTMLRow{}
	Walk(ParseHTML(t, page), func(n *html.Node) {
		if n.Data != "tr" {
			return
		}
		r := HTMLRow{Attrs: map[string]string{}}
		for _, a := range n.Attr {
			r.Attrs[a.Key] = a.Val
		}
		v, ok := r.Attrs[key]
		if !ok {
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == "td" {
				r.Cells = append(r.Cells, strings.Join(strings.Fields(Text(c)), " "))
			}
		}
		rows[v] = r
	})
	return rows
}

// Text is the text content of a node.
func Text(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(Text(c))
	}
	return b.String()
}
