//go:build !linux

package volume

func restrictImageMount(dir string) error { return errNoMounts }
