"""Model pieces shared by the converters (Core ML's ANE module and Core AI's module)."""
