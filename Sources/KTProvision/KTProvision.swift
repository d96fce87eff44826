// KTProvision: placeholder until provisioning lands (see Documentation.docc).
