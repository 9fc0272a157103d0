print("outside the tenant")
