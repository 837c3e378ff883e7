package storage

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// listItems fills a list object's Items slice in place, so that a Store
// decodes each object straight into the slice instead of decoding and then
// copying it.
type listItems struct {
	v       reflect.Value // the Items slice
	elemPtr bool          // Items is []*T rather than []T
}

func newListItems(listObj runtime.Object) (*listItems, error) {
	ptr, err := meta.GetItemsPtr(listObj)
	if err != nil {
		return nil, fmt.Errorf("list %T: %w", listObj, err)
	}
	v := reflect.ValueOf(ptr).Elem()
	if v.Kind() != reflect.Slice {
		return nil, fmt.Errorf("list %T: Items is not a slice", listObj)
	}
	et := v.Type().Elem()
	li := &listItems{v: v, elemPtr: et.Kind() == reflect.Pointer}
	v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	return li, nil
}

// grow makes room for n more items without reallocating.
func (l *listItems) grow(n int) {
	if l.v.Cap()-l.v.Len() >= n {
		return
	}
	s := reflect.MakeSlice(l.v.Type(), l.v.Len(), l.v.Len()+n)
	reflect.Copy(s, l.v)
	l.v.Set(s)
}

// next appends a zero item and returns it to be filled in.
func (l *listItems) next() (runtime.Object, error) {
	et := l.v.Type().Elem()
	if l.elemPtr {
		item := reflect.New(et.Elem())
		l.v.Set(reflect.Append(l.v, item))
		obj, ok := item.Interface().(runtime.Object)
		if !ok {
			return nil, fmt.Errorf("list item %s is not a runtime.Object", et)
		}
		return obj, nil
	}
	l.v.Set(reflect.Append(l.v, reflect.Zero(et)))
	obj, ok := l.v.Index(l.v.Len() - 1).Addr().Interface().(runtime.Object)
	if !ok {
		return nil, fmt.Errorf("list item %s is not a runtime.Object", et)
	}
	return obj, nil
}

// drop removes the last item.
func (l *listItems) drop() {
	n := l.v.Len() - 1
	l.v.Index(n).SetZero()
	l.v.SetLen(n)
}

func (l *listItems) len() int { return l.v.Len() }
