// Package head is what one layer of the front hands another for a
// response head in place of an http.Header: the app's fields as a list,
// in the order the app sent them, when nothing between the proxy and
// the connection reads or changes the header map.
package head

// Field is one header field: a canonical name and one value.
type Field struct{ Name, Value string }

// FieldWriter is an http.ResponseWriter (gsup's HTTP/1.1 layer's) that
// takes a final response's fields as a list. WriteFields is WriteHeader
// with fs as the header's fields after those already in Header(); fs is
// copied. Header() called afterwards holds fs too.
//
// The fields must be valid, as the caller found them in a response head
// it checked: a name that is a token, in canonical form, and a value
// with no control byte but tab and no white space at either end. They
// are written as they are, not looked at again.
//
// Until the head goes out (Flush, or more than Held body bytes), Write
// copies what it is given and returns without waiting for the client.
type FieldWriter interface {
	WriteFields(code int, fs []Field)
}

// Held is how many body bytes a FieldWriter keeps with the head before it
// writes anything.
const Held = 16 << 10
