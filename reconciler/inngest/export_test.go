package inngest

// Builds is how many apps r has built.
func Builds(r *Registry) int64 { return r.builds.Load() }

// Built reports whether tenant's app is built, without marking it used.
func Built(r *Registry, tenant string) bool {
	r.mu.RLock()
	a := r.apps[tenant]
	r.mu.RUnlock()
	if a == nil {
		return false
	}
	r.builtApps.mu.Lock()
	defer r.builtApps.mu.Unlock()
	return a.built != nil
}

// BuiltApps is how many apps r keeps built.
func BuiltApps(r *Registry) int { return r.builtApps.len() }

// Build builds tenant's app if it is not built.
func Build(r *Registry, tenant string) error {
	r.mu.RLock()
	a := r.apps[tenant]
	r.mu.RUnlock()
	if a == nil {
		return ErrNoApp
	}
	_, err := r.built(a)
	return err
}
