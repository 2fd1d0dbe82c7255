// Being written: see the module's header once it exists.
