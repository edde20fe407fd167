# Terraform before 1.12 evaluates both operands of ||: a null size fails
# the comparison even though the left side is true.
variable "size" {
  type    = number
  default = null

  validation {
    condition     = var.size == null || var.size > 0
    error_message = "The size must be positive."
  }
}

output "size" {
  value = var.size
}
